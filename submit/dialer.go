// Package submit sends mail the way a careful mail client does: it races the
// submission ports of a policy, insists on verified TLS, refuses to continue
// when STARTTLS is stripped or responses are injected, authenticates only
// over verified TLS, and explains every failure in words a person can act on.
package submit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portwise/portwise/tlsmode"
)

// ContextDialer makes TCP connections; *net.Dialer and golang.org/x/net/proxy
// SOCKS dialers satisfy it.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults of the Dialer's zero fields.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultFallbackDelay = 300 * time.Millisecond
	DefaultLocalName     = "localhost"
)

// Dialer opens authenticated submission sessions. Its zero value dials the
// default policy (587 STARTTLS, 465 implicit TLS, 2525 STARTTLS) with
// verified TLS and no AUTH. A Dialer is safe for concurrent use once
// configured; do not change its fields while a Dial runs, and do not copy a
// Dialer after its first Dial (it holds its session cache and winners).
type Dialer struct {
	// Candidates is the port policy in order of preference. nil means
	// tlsmode.Default().
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
	// one starts. 0 means 300ms; a negative value tries candidates strictly
	// one after another.
	FallbackDelay time.Duration
	// NetDialer makes the TCP connections; nil means a *net.Dialer.
	NetDialer ContextDialer
	// Logger receives one record per attempt step (connect, banner, ehlo,
	// starttls, tls, auth, result) with port, mode and duration. nil is
	// silent. It never receives a secret.
	Logger *slog.Logger
	// Transcript, when set, receives a swaks-style record of every session
	// ("C:" and "S:" lines, timestamped, prefixed with the port), with AUTH
	// payloads and message bodies redacted.
	Transcript io.Writer
	// SessionCache resumes TLS sessions across dials. nil means a cache of
	// 64 entries shared by this Dialer; set it to share one between Dialers.
	SessionCache tls.ClientSessionCache

	// Discovery, when set, makes Dial of a host without a port look up the
	// host's RFC 6186 SRV records first and race their targets ahead of
	// the static policy on the host itself. See Discovery for the trust
	// rules; nil means no lookup.
	Discovery *Discovery
	// Winners remembers, per host dialled, the server and candidate that
	// last won, so the next Dial starts with it and staggers the rest
	// behind. nil means an in-memory store of this Dialer; set one to
	// persist or share it.
	Winners WinnerStore
	// WinnerTTL is how long a winner is remembered. 0 means 24h; a
	// negative value turns remembering off.
	WinnerTTL time.Duration

	once    sync.Once
	cache   tls.ClientSessionCache
	trMu    sync.Mutex
	winOnce sync.Once
	winners WinnerStore
}

func (d *Dialer) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultTimeout
}

func (d *Dialer) fallbackDelay() time.Duration {
	if d.FallbackDelay == 0 {
		return DefaultFallbackDelay
	}
	return d.FallbackDelay
}

func (d *Dialer) localName() string {
	if d.LocalName != "" {
		return d.LocalName
	}
	return DefaultLocalName
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

// verified reports whether st is TLS whose peer was verified: by the
// standard chain verification, or by a callback of the caller's own.
func verified(st tls.ConnectionState, cfg *tls.Config) bool {
	if !st.HandshakeComplete {
		return false
	}
	if len(st.VerifiedChains) > 0 {
		// Also true of a resumed session: crypto/tls resumes only sessions
		// whose chains it verified, and restores those chains.
		return true
	}
	return cfg.InsecureSkipVerify && (cfg.VerifyConnection != nil || cfg.VerifyPeerCertificate != nil)
}

// SplitHost splits "host", "host:port", "[v6]:port" or a bare IPv6 literal
// into the host name and the port (0 when absent).
func SplitHost(hostport string) (host string, port int, err error) {
	hostport = strings.TrimSpace(hostport)
	if hostport == "" {
		return "", 0, errors.New("submit: empty host")
	}
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		if ip := net.ParseIP(strings.Trim(hostport, "[]")); ip != nil {
			return ip.String(), 0, nil
		}
		if strings.Contains(err.Error(), "missing port") {
			return hostport, 0, validHost(hostport)
		}
		return "", 0, fmt.Errorf("submit: invalid host %q: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("submit: invalid port %q in %q: want 1-65535", p, hostport)
	}
	if h == "" {
		return "", 0, fmt.Errorf("submit: no host name in %q", hostport)
	}
	return h, n, validHost(h)
}

func validHost(h string) error {
	// Control characters would reach the TLS SNI, OAUTHBEARER's host=
	// field, logs and transcripts.
	if strings.ContainsAny(h, " /@") || strings.ContainsFunc(h, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("submit: invalid host %q", h)
	}
	return nil
}

// plan returns the candidates for a Dial of host (with an optional port).
func (d *Dialer) plan(port int) []tlsmode.Candidate {
	cands := d.Candidates
	if cands == nil {
		cands = tlsmode.Default()
	}
	if port == 0 {
		return append([]tlsmode.Candidate(nil), cands...)
	}
	for _, c := range cands {
		if c.Port == port {
			return []tlsmode.Candidate{c}
		}
	}
	return []tlsmode.Candidate{{Port: port, Mode: tlsmode.ForPort(port)}}
}

// Dial returns an authenticated client for host. host without a port tries
// every candidate in policy order, staggered by FallbackDelay; "host:port"
// tries only that port. Candidates race for a secure session; AUTH then
// runs on one session at a time, so a credential is sent at most once per
// Dial however many ports race. When no candidate succeeds the error is a
// *DialError listing every attempt.
//
// With XOAuth2 or OAuthBearer the token is fetched before any connection,
// and a token the server rejects is refreshed and the Dial run once more
// with the new one.
func (d *Dialer) Dial(ctx context.Context, host string) (*Client, error) {
	h, port, err := SplitHost(host)
	if err != nil {
		return nil, err
	}
	if err := d.dialChecks(ctx, h); err != nil {
		return nil, err
	}
	// An OAuth2 token the server rejected is refreshed and tried once more.
	return d.dialRenewing(ctx, func(ctx context.Context) *race { return d.newRace(ctx, h, port) })
}

// preparer is implemented by Auths that need work done before dialling.
type preparer interface {
	prepare(ctx context.Context) error
}

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
		attrs = append(attrs, slog.String("error", err.Error()))
		level = slog.LevelInfo
	}
	if step == "result" {
		level = slog.LevelInfo
	}
	d.Logger.LogAttrs(ctx, level, "portwise "+step, attrs...)
}
