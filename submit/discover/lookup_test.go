package discover_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/discover"
	"github.com/portwise/portwise/tlsmode"
)

// selfSigned returns a certificate for names and a pool trusting it.
func selfSigned(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// webServers serves documents by "host/path" over HTTPS (port 443) and
// plain HTTP (port 80), both on loopback, and returns a client whose
// connections to any host go to them, so https://autoconfig.DOMAIN/...
// reaches the test server with the name in SNI and Host.
type webServers struct {
	client         *http.Client
	plainRequests  atomic.Int64
	secureRequests atomic.Int64
}

func startWeb(t *testing.T, secure, plain map[string]string, names ...string) *webServers {
	w := &webServers{}
	serve := func(docs map[string]string, count *atomic.Int64) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			count.Add(1)
			doc, ok := docs[r.Host+r.URL.Path]
			switch {
			case !ok:
				http.NotFound(rw, r)
			case strings.HasPrefix(doc, "redirect:"):
				http.Redirect(rw, r, strings.TrimPrefix(doc, "redirect:"), http.StatusFound)
			default:
				rw.Header().Set("Content-Type", "text/xml")
				rw.Write([]byte(doc))
			}
		}
	}
	ts := httptest.NewUnstartedServer(serve(secure, &w.secureRequests))
	cert, pool := selfSigned(t, names...)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	ps := httptest.NewServer(serve(plain, &w.plainRequests))
	t.Cleanup(ps.Close)
	w.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			target := ts.Listener.Addr().String()
			if strings.HasSuffix(addr, ":80") {
				target = ps.Listener.Addr().String()
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", target)
		},
	}}
	return w
}

func autoconfigXML(servers ...string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example">
    <domain>example</domain>
    <incomingServer type="imap"><hostname>imap.x.test</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
` + strings.Join(servers, "\n") + `
  </emailProvider>
</clientConfig>`
}

func outgoing(host, port, socket string) string {
	return `<outgoingServer type="smtp"><hostname>` + host + `</hostname><port>` + port + `</port><socketType>` + socket +
		`</socketType><authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username></outgoingServer>`
}

func TestLookupFollowsPresetsAutoconfigSRVThenMX(t *testing.T) {
	S, I := tlsmode.StartTLS, tlsmode.Implicit
	const cfgPath = "/mail/config-v1.1.xml"
	const wellKnown = "/.well-known/autoconfig/mail/config-v1.1.xml"
	web := startWeb(t,
		map[string]string{
			"autoconfig.ac.test" + cfgPath: autoconfigXML(
				outgoing("smtp.ac.test", "465", "SSL"), outgoing("smtp.ac.test", "587", "STARTTLS"),
				outgoing("smtp.ac.test", "25", "plain"), outgoing("relay.ac.test", "25", "plain")),
			"wk.test" + wellKnown:                 autoconfigXML(outgoing("mail.%EMAILDOMAIN%", "587", "STARTTLS")),
			"autoconfig.plainonly.test" + cfgPath: autoconfigXML(outgoing("smtp.plainonly.test", "25", "plain")),
			"autoconfig.redirect.test" + cfgPath:  "redirect:http://autoconfig.redirect.test" + cfgPath,
			"autoconfig.big.test" + cfgPath:       autoconfigXML(outgoing("smtp.big.test", "465", "SSL")) + strings.Repeat(" ", 300<<10),
		},
		map[string]string{
			"autoconfig.redirect.test" + cfgPath: autoconfigXML(outgoing("smtp.attacker.test", "465", "SSL")),
		},
		"autoconfig.ac.test", "wk.test", "autoconfig.wk.test", "autoconfig.plainonly.test", "autoconfig.redirect.test",
		"autoconfig.big.test", "autoconfig.nothing.test", "nothing.test", "plainonly.test", "redirect.test", "big.test")
	ns := startDNS(t,
		srvRR("submission", "plainonly.test", 0, 0, 587, "mail.plainonly.test."),
		"redirect.test. 60 IN MX 10 aspmx.l.google.com.",
		"big.test. 60 IN MX 10 big-test.mail.protection.outlook.com.",
		"nothing.test. 60 IN MX 10 mx.nothing.test.",
	)
	l := &discover.Lookuper{HTTPClient: web.client, Resolver: ns.Resolver}

	tests := []struct {
		email string
		want  []submit.Server
	}{
		{"someone@GMail.com", []submit.Server{{Host: "smtp.gmail.com", Candidates: []tlsmode.Candidate{{Port: 587, Mode: S}, {Port: 465, Mode: I}}, Source: "preset", Provider: "Gmail"}}},
		{"someone@ac.test", []submit.Server{{Host: "smtp.ac.test", Candidates: []tlsmode.Candidate{{Port: 465, Mode: I}, {Port: 587, Mode: S}}, Source: "autoconfig", Username: "someone@ac.test"}}},
		{"someone@wk.test", []submit.Server{{Host: "mail.wk.test", Candidates: []tlsmode.Candidate{{Port: 587, Mode: S}}, Source: "autoconfig", Username: "someone@wk.test"}}},
		{"someone@plainonly.test", []submit.Server{{Host: "mail.plainonly.test", Candidates: []tlsmode.Candidate{{Port: 587, Mode: S}}, Source: "srv"}}},
		// The redirect to plain HTTP is refused; the MX at Google decides.
		{"someone@redirect.test", []submit.Server{{Host: "smtp.gmail.com", Candidates: []tlsmode.Candidate{{Port: 587, Mode: S}, {Port: 465, Mode: I}}, Source: "mx", Provider: "Gmail"}}},
		{"someone@big.test", []submit.Server{{Host: "smtp.office365.com", Candidates: []tlsmode.Candidate{{Port: 587, Mode: S}}, Source: "mx", Provider: "Microsoft 365"}}},
	}
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			before := ns.Queries()
			got, err := l.Lookup(context.Background(), tt.email)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b submit.Server) bool {
				return a.Host == b.Host && a.Source == b.Source && a.Provider == b.Provider && a.Username == b.Username && slices.Equal(a.Candidates, b.Candidates)
			}) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if tt.want[0].Source == "preset" && ns.Queries() != before {
				t.Errorf("a preset answer made DNS queries")
			}
		})
	}
	if n := web.plainRequests.Load(); n != 0 {
		t.Errorf("plain HTTP requests = %d; want none: a redirect to plain HTTP is refused, not followed", n)
	}

	_, err := l.Lookup(context.Background(), "someone@nothing.test")
	if !errors.Is(err, discover.ErrNoServer) {
		t.Fatalf("err = %v; want ErrNoServer", err)
	}
	for _, want := range []string{"https://autoconfig.nothing.test/mail/config-v1.1.xml: 404", "srv: no _submissions", "mx.nothing.test match no provider"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestLookupNeverFetchesPlainHTTP(t *testing.T) {
	web := startWeb(t, nil, map[string]string{"x.test/cfg": autoconfigXML(outgoing("smtp.x.test", "465", "SSL"))}, "x.test")
	ns := startDNS(t)
	l := &discover.Lookuper{HTTPClient: web.client, Resolver: ns.Resolver,
		AutoconfigURLs: func(domain string) []string { return []string{"http://" + domain + "/cfg"} }}
	_, err := l.Lookup(context.Background(), "a@x.test")
	if !errors.Is(err, discover.ErrNoServer) || !strings.Contains(err.Error(), "not HTTPS, ignored") {
		t.Errorf("err = %v", err)
	}
	if n := web.plainRequests.Load(); n != 0 {
		t.Errorf("%d plain HTTP requests", n)
	}
}

func TestLookupRefusesWhatIsNotAnAddress(t *testing.T) {
	tests := []struct {
		email, want string
		bad         bool // ErrBadAddress: it would inject
	}{
		{"", "not an email address", false},
		{"nodomain", "not an email address", false},
		{"@example.com", "not an email address", false},
		{"a@", "not an email address", false},
		{"a@b@c.test", "not an email address", false},
		{"a@localhost", "not a domain name", false},
		{"a@exa mple.com", "not a domain name", false},
		{"a@example.com\r\nRCPT TO:<x@y>", "CR, LF or NUL", true},
	}
	for _, tt := range tests {
		_, err := new(discover.Lookuper).Lookup(context.Background(), tt.email)
		if err == nil || errors.Is(err, submit.ErrBadAddress) != tt.bad || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Lookup(%q) err = %v; want %q, ErrBadAddress %v", tt.email, err, tt.want, tt.bad)
		}
		if !tt.bad && err != nil && strings.Contains(err.Error(), "CR") {
			t.Errorf("Lookup(%q) speaks of CR: %v", tt.email, err)
		}
	}
}

// TestAutoconfigRedirectsMustAllBeHTTPS is the attack of issue 13: the
// domain's HTTPS server redirects to plain HTTP, where anyone on the path
// redirects again to HTTPS on a host of theirs, with a valid certificate,
// serving a document that names their SMTP server. Checking only the
// final response accepts it, and DialServers would hand them the password.
// Every hop must be HTTPS, with the default client's redirect policy and
// with a caller's that allows anything; redirects are bounded; and a
// document says where it came from.
func TestAutoconfigRedirectsMustAllBeHTTPS(t *testing.T) {
	const cfgPath = "/mail/config-v1.1.xml"
	evil := autoconfigXML(outgoing("smtp.attacker.test", "465", "SSL"))
	secure := map[string]string{
		"autoconfig.chain.test" + cfgPath: "redirect:http://autoconfig.chain.test/hop",
		"autoconfig.attacker.test/evil":   evil,
		"autoconfig.loop.test" + cfgPath:  "redirect:https://autoconfig.loop.test" + cfgPath,
		"autoconfig.moved.test" + cfgPath: "redirect:https://autoconfig.moved.test/new",
		"autoconfig.moved.test/new":       autoconfigXML(outgoing("smtp.moved.test", "465", "SSL")),
	}
	plain := map[string]string{"autoconfig.chain.test/hop": "redirect:https://autoconfig.attacker.test/evil"}
	web := startWeb(t, secure, plain, "autoconfig.chain.test", "autoconfig.attacker.test", "autoconfig.loop.test", "autoconfig.moved.test",
		"chain.test", "loop.test", "moved.test")
	ns := startDNS(t)
	permissive := *web.client
	permissive.CheckRedirect = func(*http.Request, []*http.Request) error { return nil }
	for name, client := range map[string]*http.Client{"default policy": web.client, "caller allows any redirect": &permissive} {
		t.Run(name, func(t *testing.T) {
			before := web.plainRequests.Load()
			l := &discover.Lookuper{HTTPClient: client, Resolver: ns.Resolver}
			servers, err := l.Lookup(context.Background(), "victim@chain.test")
			for _, s := range servers {
				if strings.Contains(s.Host, "attacker") {
					t.Fatalf("Lookup returned the attacker's server %+v", s)
				}
			}
			if !errors.Is(err, discover.ErrNoServer) || !strings.Contains(err.Error(), "not HTTPS") {
				t.Errorf("err = %v; want ErrNoServer saying a hop was not HTTPS", err)
			}
			if n := web.plainRequests.Load() - before; n != 0 {
				t.Errorf("%d requests went over plain HTTP", n)
			}

			_, err = l.Lookup(context.Background(), "victim@loop.test")
			if !errors.Is(err, discover.ErrNoServer) || !strings.Contains(err.Error(), "more than 5 redirects") {
				t.Errorf("redirect loop: err = %v", err)
			}

			servers, err = l.Lookup(context.Background(), "someone@moved.test")
			if err != nil || len(servers) != 1 || servers[0].Origin != "https://autoconfig.moved.test/new" {
				t.Errorf("moved document: %+v, %v; want Origin https://autoconfig.moved.test/new", servers, err)
			}
		})
	}
}
