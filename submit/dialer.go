package submit

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/tlsmode"
)

// ContextDialer makes TCP connections; *net.Dialer and golang.org/x/net/proxy
// SOCKS dialers satisfy it.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// The defaults of the Dialer's zero fields.
const (
	defaultTimeout       = 30 * time.Second
	defaultFallbackDelay = 300 * time.Millisecond
	defaultLocalName     = "localhost"
	defaultWinnerTTL     = 24 * time.Hour
)

// Dialer opens authenticated submission sessions. Its zero value dials the
// default policy (587 STARTTLS, 465 implicit TLS, 2525 STARTTLS) with
// verified TLS and no AUTH. Its knobs are fields, as net.Dialer's and
// http.Transport's are: the zero value of each works and its doc says the
// default. A Dialer is safe for concurrent use once configured; do not
// change its fields while a Dial runs, and do not copy a Dialer after its
// first Dial (it holds its session cache and winners).
type Dialer struct {
	// Candidates is the port policy in order of preference. nil means
	// tlsmode.Default(). A candidate without a Mode has its mode detected.
	Candidates []tlsmode.Candidate
	// TLSConfig is cloned for each attempt. ServerName defaults to the host
	// dialled; MinVersion is raised to TLS 1.2 when lower. Certificates must
	// verify: InsecureSkipVerify is honoured only together with a
	// VerifyConnection or VerifyPeerCertificate callback that does the
	// verification (certificate pinning).
	TLSConfig *tls.Config
	// Auth authenticates each session; nil means no AUTH (an IP-authorised
	// relay).
	Auth Auth
	// LocalName is the EHLO name; "" means "localhost".
	LocalName string
	// Timeout bounds one attempt, from connect through AUTH; 0 means 30s.
	Timeout time.Duration
	// FallbackDelay is the head start each candidate gets before the next
	// one starts; a candidate that fails lets the next start at once. 0
	// means 300ms; a negative value tries candidates strictly one after
	// another.
	FallbackDelay time.Duration
	// NetDialer makes the TCP connections; nil means a *net.Dialer.
	NetDialer ContextDialer
	// Logger receives one record per attempt step (connect, banner, ehlo,
	// starttls, tls, auth, result) with port, mode and duration. nil is
	// silent. It never receives a secret. Like Trace's hooks, the record of
	// a port still connecting when another won may come after Dial returns.
	Logger *slog.Logger
	// Transcript, when set, receives a swaks-style record of every session
	// ("C:" and "S:" lines, timestamped, prefixed with the port), with AUTH
	// payloads and message bodies redacted and the server's text escaped.
	// Writes are serialised. Once Dial returns, only the Client writes to
	// it: a port still connecting when another won says "stopped: another
	// port won" before that, and nothing after.
	Transcript io.Writer
	// SessionCache resumes TLS sessions across dials. nil means a cache of
	// 64 entries shared by this Dialer; set it to share one between Dialers.
	SessionCache tls.ClientSessionCache

	// Discover, when set, finds servers for a host dialled without a port,
	// which race ahead of the policy on the host itself: for RFC 6186 SRV
	// records, the Lookup method of a discover.SRV. Its error, if the
	// Dial then fails, is in DialError.Discovery.
	Discover func(ctx context.Context, host string) ([]Server, error)
	// Winners remembers, per host dialled, the server and candidate that
	// last won, so the next Dial starts with it and staggers the rest
	// behind. nil means an in-memory store of this Dialer; set one to
	// persist or share it.
	Winners WinnerStore
	// WinnerTTL is how long a winner is remembered. 0 means 24h; a
	// negative value turns remembering off.
	WinnerTTL time.Duration
	// DisablePipeConnect turns early pipelining off. By default, when the
	// remembered winner advertised PIPECONNECT (draft-harris-early-pipe,
	// which Exim implements), the next Dial to it sends EHLO (and
	// STARTTLS) without waiting for the banner, and AUTH with the EHLO
	// after TLS: 2 round trips fewer from connect to authenticated. Every
	// reply is still read and checked in order; a server that strips
	// STARTTLS, injects bytes or greets with anything but 220 fails the
	// attempt as it would without, and is forgotten. Never on a first
	// session, and never to a server that did not advertise it.
	DisablePipeConnect bool

	once    sync.Once
	cache   tls.ClientSessionCache
	trMu    sync.Mutex
	winOnce sync.Once
	winners WinnerStore
	// rejections counts the servers' final rejections of the credential:
	// a Dial under way when it changes does not send it (enterLogin).
	rejections atomic.Uint64
}

func (d *Dialer) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return defaultTimeout
}

func (d *Dialer) fallbackDelay() time.Duration {
	if d.FallbackDelay == 0 {
		return defaultFallbackDelay
	}
	return d.FallbackDelay
}

func (d *Dialer) localName() string {
	if d.LocalName != "" {
		return d.LocalName
	}
	return defaultLocalName
}

func (d *Dialer) netDialer() ContextDialer {
	if d.NetDialer != nil {
		return d.NetDialer
	}
	return &net.Dialer{}
}

func (d *Dialer) sessionCache() tls.ClientSessionCache {
	if d.SessionCache != nil {
		return d.SessionCache
	}
	d.once.Do(func() { d.cache = tls.NewLRUClientSessionCache(64) })
	return d.cache
}

// tlsConfig returns the per-attempt TLS configuration for host.
func (d *Dialer) tlsConfig(host string) *tls.Config {
	var cfg *tls.Config
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.ClientSessionCache == nil {
		cfg.ClientSessionCache = d.sessionCache()
	}
	return cfg
}

// Dial returns an authenticated client for host. host without a port tries
// every candidate in policy order, staggered by FallbackDelay; "host:port"
// tries only that port, with the mode of the policy's candidate for it, or
// else both modes, raced. Candidates race for a secure session; AUTH then
// runs on the first one only, so a credential goes to one port per Dial
// whatever the reply. When no candidate succeeds the error is a *DialError
// listing every attempt.
//
// With XOAuth2 or OAuthBearer the token is fetched before any connection,
// and a token the server rejects is refreshed and the Dial run once more
// with the new one.
func (d *Dialer) Dial(ctx context.Context, host string) (*Client, error) {
	h, port, err := plan.SplitHost(host)
	if err != nil {
		return nil, diag.Configf("submit: %w", err)
	}
	return d.dial(ctx, dialRequest{host: h, port: port})
}

// DialServers is Dial over several servers, such as discover.Lookup
// returns: their candidates race in order (each server's Candidates, or
// the Dialer's policy when nil), staggered by FallbackDelay, with the same
// guarantees as Dial: verified TLS for the server's own name, and a
// credential sent to one port only. The winner is remembered under the
// first server's host.
func (d *Dialer) DialServers(ctx context.Context, servers []Server) (*Client, error) {
	if len(servers) == 0 {
		return nil, diag.Configf("submit: DialServers needs at least one server")
	}
	req := dialRequest{servers: make([]plan.Server, len(servers))}
	for i, s := range servers {
		h, port, err := plan.SplitHost(s.Host)
		if err != nil {
			return nil, diag.Configf("submit: server %d: %w", i, err)
		}
		if port != 0 {
			return nil, diag.Configf("submit: server %s: give the ports in Server.Candidates, not in Host", untrusted.Name(s.Host))
		}
		req.servers[i] = plan.Server{Host: h, Candidates: s.Candidates}
	}
	req.host = req.servers[0].Host
	return d.dial(ctx, req)
}

// log records one step of an attempt.
func (d *Dialer) log(ctx context.Context, c tlsmode.Candidate, host, step string, dur time.Duration, err error) {
	if d.Logger == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("host", host),
		slog.Int("port", c.Port),
		slog.String("mode", c.Mode.String()),
		slog.String("step", step),
		slog.Duration("duration", dur),
	}
	level := slog.LevelDebug
	if err != nil {
		attrs = append(attrs, slog.String("error", untrusted.Text(err.Error(), 4*untrusted.MaxText)))
		level = slog.LevelInfo
	}
	if step == "result" {
		level = slog.LevelInfo
	}
	d.Logger.LogAttrs(ctx, level, "portwise "+step, attrs...)
}
