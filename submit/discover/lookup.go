package discover

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// ErrNoServer means Lookup found no submission server for an address.
var ErrNoServer = errors.New("no submission server found")

// Bounds on what an autoconfig server can make Lookup read or follow.
const (
	maxAutoconfigBytes = 256 << 10 // a document; real ones are a few KiB
	maxRedirects       = 5         // redirects followed for one URL
	maxIgnored         = 8         // ignored entries named in an error
)

// Lookuper finds submission servers for an email address the way desktop
// mail clients do. Its zero value uses the system resolver and a fresh
// HTTPS client; every field replaces one part for tests or for a
// constrained network. A Lookuper is safe for concurrent use.
type Lookuper struct {
	// HTTPClient fetches autoconfig documents; nil means a client with a
	// 15s timeout. Every hop must be HTTPS: Lookup follows at most 5
	// redirects, and none to another scheme, whatever the client's own
	// CheckRedirect allows (it still runs, after that check).
	HTTPClient *http.Client
	// Resolver looks up SRV and MX records; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// SRV sets the SRV trust policy; nil means Resolver with the email's
	// domain as the only allowed domain.
	SRV *SRV
	// AutoconfigURLs returns the autoconfig document URLs to try for a
	// domain, in order; nil means
	// https://autoconfig.DOMAIN/mail/config-v1.1.xml and
	// https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml.
	// URLs that are not https:// are skipped.
	AutoconfigURLs func(domain string) []string
}

// Lookup finds submission servers for an email address with a zero
// Lookuper: the system resolver and a fresh HTTPS client.
func Lookup(ctx context.Context, email string) ([]submit.Server, error) {
	return new(Lookuper).Lookup(ctx, email)
}

// Lookup finds submission servers for an email address. It tries, in
// order, and stops at the first that answers:
//
//  1. the provider presets (Providers) for the address's domain (gmail.com,
//     icloud.com, ...), without any I/O;
//  2. the domain's autoconfig document (Thunderbird's config-v1.1.xml),
//     over HTTPS only, taking outgoingServer entries of type "smtp" with
//     socketType SSL (implicit TLS) or STARTTLS and ignoring plain ones;
//  3. the RFC 6186 SRV records, under the SRV trust policy;
//  4. the MX hosts, when they belong to a preset's provider (an MX under
//     google.com means Gmail, under mail.protection.outlook.com
//     Microsoft 365).
//
// Pass the result to Dialer.DialServers. Each Server says where it came
// from (Source, Origin). When nothing is found the error wraps
// ErrNoServer and says what each step saw.
func (l *Lookuper) Lookup(ctx context.Context, email string) ([]submit.Server, error) {
	local, domain, ok := strings.Cut(strings.TrimSpace(email), "@")
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	switch {
	case strings.ContainsAny(email, "\r\n\x00"):
		return nil, fmt.Errorf("discover: Lookup: the address %s holds CR, LF or NUL: %w", quote(email), submit.ErrBadAddress)
	case !ok || local == "" || domain == "" || strings.Contains(domain, "@"):
		return nil, fmt.Errorf("discover: Lookup: %s is not an email address: want user@domain", quote(email))
	case plan.ValidHost(domain) != nil || !strings.Contains(domain, "."):
		return nil, fmt.Errorf("discover: Lookup: the domain of %s is not a domain name", quote(email))
	}
	email = local + "@" + domain

	if p, ok := ProviderForDomain(domain); ok {
		return []submit.Server{fromProvider(p, "preset")}, nil
	}
	var seen []string

	servers, why := l.autoconfig(ctx, email, local, domain)
	if len(servers) > 0 {
		return servers, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discover: Lookup for %s: %w", domain, err)
	}
	seen = append(seen, why...)

	disc := l.SRV
	if disc == nil {
		disc = &SRV{Resolver: l.Resolver}
	}
	servers, err := disc.Lookup(ctx, domain)
	if len(servers) > 0 {
		return servers, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discover: Lookup for %s: %w", domain, err)
	}
	if err != nil {
		seen = append(seen, "srv: "+err.Error())
	} else {
		seen = append(seen, "srv: no _submissions or _submission records")
	}

	res := l.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	mxs, err := res.LookupMX(ctx, domain)
	var hosts []string
	for _, mx := range mxs {
		if p, ok := ProviderForMX(mx.Host); ok {
			return []submit.Server{fromProvider(p, "mx")}, nil
		}
		hosts = append(hosts, strings.TrimSuffix(mx.Host, "."))
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("discover: Lookup for %s: %w", domain, ctx.Err())
	case err != nil:
		seen = append(seen, "mx: "+untrusted.Reply(err.Error()))
	default:
		seen = append(seen, "mx: "+untrusted.Names(hosts, "hosts")+" match no provider preset")
	}
	return nil, fmt.Errorf("discover: Lookup for %s: %w: %s — ask the mail provider for its submission host and dial it",
		domain, ErrNoServer, strings.Join(seen, "; "))
}

func fromProvider(p Provider, source string) submit.Server {
	return submit.Server{
		Host:       p.Host,
		Candidates: p.Candidates,
		Source:     source,
		Origin:     p.Docs,
		Provider:   p.Name,
		Username:   p.Username,
	}
}

// quote quotes a name the caller gave, escaped and bounded.
func quote(s string) string { return `"` + untrusted.Name(s) + `"` }

func (l *Lookuper) autoconfigURLs(domain string) []string {
	if l.AutoconfigURLs != nil {
		return l.AutoconfigURLs(domain)
	}
	return []string{
		"https://autoconfig." + domain + "/mail/config-v1.1.xml",
		"https://" + domain + "/.well-known/autoconfig/mail/config-v1.1.xml",
	}
}

// autoconfig returns the servers of the first usable autoconfig document,
// or what each URL gave instead.
func (l *Lookuper) autoconfig(ctx context.Context, email, local, domain string) ([]submit.Server, []string) {
	client := l.httpClient()
	var why []string
	for _, u := range l.autoconfigURLs(domain) {
		shown := untrusted.Name(u)
		if !strings.HasPrefix(strings.ToLower(u), "https://") {
			why = append(why, "autoconfig "+shown+": not HTTPS, ignored")
			continue
		}
		doc, origin, err := fetchAutoconfig(ctx, client, u)
		if err != nil {
			why = append(why, "autoconfig "+shown+": "+untrusted.Reply(err.Error()))
			if ctx.Err() != nil {
				return nil, why
			}
			continue
		}
		servers, err := parseAutoconfig(doc, email, local, domain)
		if err != nil {
			why = append(why, "autoconfig "+shown+": "+err.Error())
			continue
		}
		for i := range servers {
			servers[i].Origin = origin
		}
		return servers, nil
	}
	return nil, why
}

// httpClient is the caller's client, or a default one, whose redirects
// must all be HTTPS and at most maxRedirects: checking only the final
// response would accept HTTPS -> HTTP -> HTTPS, where the plain hop lets
// anyone on the path send the request to a host of theirs.
func (l *Lookuper) httpClient() *http.Client {
	c := http.Client{Timeout: 15 * time.Second}
	if l.HTTPClient != nil {
		c = *l.HTTPClient
	}
	theirs := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("redirected to %s, which is not HTTPS: anyone on the path could answer it; ignored", untrusted.Name(req.URL.Redacted()))
		}
		if len(via) > maxRedirects {
			return fmt.Errorf("more than %d redirects; ignored", maxRedirects)
		}
		if theirs != nil {
			return theirs(req, via)
		}
		return nil
	}
	return &c
}

// fetchAutoconfig fetches a document and the URL it finally came from.
func fetchAutoconfig(ctx context.Context, client *http.Client, u string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.TLS == nil || resp.Request == nil || resp.Request.URL.Scheme != "https" {
		// Redirected to plain HTTP: anyone on the path could have
		// written this document.
		return nil, "", errors.New("answered over plain HTTP, ignored")
	}
	origin := resp.Request.URL.Redacted()
	if resp.StatusCode != http.StatusOK {
		return nil, "", errors.New(untrusted.Name(resp.Status))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAutoconfigBytes+1))
	if err != nil {
		return nil, "", err
	}
	if len(b) > maxAutoconfigBytes {
		return nil, "", fmt.Errorf("document larger than %d KiB, ignored", maxAutoconfigBytes>>10)
	}
	return b, origin, nil
}

// clientConfig is the part of Thunderbird's config-v1.1.xml that matters
// here: https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat
type clientConfig struct {
	XMLName   xml.Name `xml:"clientConfig"`
	Providers []struct {
		Outgoing []struct {
			Type       string `xml:"type,attr"`
			Hostname   string `xml:"hostname"`
			Port       string `xml:"port"`
			SocketType string `xml:"socketType"`
			Username   string `xml:"username"`
		} `xml:"outgoingServer"`
	} `xml:"emailProvider"`
}

func parseAutoconfig(doc []byte, email, local, domain string) ([]submit.Server, error) {
	var cfg clientConfig
	dec := xml.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("not a config-v1.1.xml document: %s", untrusted.Reply(err.Error()))
	}
	fill := strings.NewReplacer("%EMAILADDRESS%", email, "%EMAILLOCALPART%", local, "%EMAILDOMAIN%", domain)
	var servers []submit.Server
	var skipped []string
	n := 0 // candidates taken
	for _, p := range cfg.Providers {
		for _, o := range p.Outgoing {
			if !strings.EqualFold(o.Type, "smtp") {
				continue
			}
			host := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(fill.Replace(o.Hostname)), "."))
			port, err := strconv.Atoi(strings.TrimSpace(o.Port))
			if host == "" || plan.ValidHost(host) != nil || strings.ContainsAny(host, "%:") || err != nil || port < 1 || port > 65535 {
				skipped = append(skipped, "invalid server "+quote(o.Hostname)+" port "+quote(o.Port))
				continue
			}
			var mode tlsmode.Mode
			switch strings.ToUpper(strings.TrimSpace(o.SocketType)) {
			case "SSL", "TLS":
				mode = tlsmode.Implicit
			case "STARTTLS":
				mode = tlsmode.StartTLS
			default:
				// "plain" (or anything unknown): never trusted.
				skipped = append(skipped, fmt.Sprintf("%s:%d with socketType %s", host, port, quote(o.SocketType)))
				continue
			}
			c := tlsmode.Candidate{Port: port, Mode: mode}
			if n >= maxSRVRecords {
				// As with SRV: the document must not make a Dial unbounded.
				continue
			}
			n++
			i := slices.IndexFunc(servers, func(s submit.Server) bool { return s.Host == host })
			if i < 0 {
				servers = append(servers, submit.Server{Host: host, Source: "autoconfig", Username: fill.Replace(strings.TrimSpace(o.Username))})
				i = len(servers) - 1
			}
			if !slices.Contains(servers[i].Candidates, c) {
				servers[i].Candidates = append(servers[i].Candidates, c)
			}
		}
	}
	if len(servers) == 0 {
		if len(skipped) > 0 {
			return nil, errors.New("no usable smtp server (ignored " + ignored(skipped) + ")")
		}
		return nil, errors.New("no outgoingServer of type smtp")
	}
	return servers, nil
}

// ignored lists ignored entries, bounded: a document can hold thousands.
func ignored(entries []string) string {
	if len(entries) <= maxIgnored {
		return strings.Join(entries, ", ")
	}
	return strings.Join(entries[:maxIgnored], ", ") + fmt.Sprintf(" and %d more entries", len(entries)-maxIgnored)
}
