package submit_test

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
	l := &submit.Lookuper{HTTPClient: web.client, Resolver: ns.Resolver}

	tests := []struct {
		email string
		want  []submit.Server
	}{
		{"someone@GMail.com", []submit.Server{{Host: "smtp.gmail.com", Candidates: []tlsmode.Candidate{{Port: 587, Mode: S}, {Port: 465, Mode: I}}, Source: "preset", Provider: "Gmail"}}},
		{"someone@ac.test", []submit.Server{{Host: "smtp.ac.test", Candidates: []tlsmode.Candidate{{Port: 465, Mode: I}, {Port: 587, Mode: S}}, Source: "autoconfig", Username: "someone@ac.test"}}},
		{"someone@wk.test", []submit.Server{{Host: "mail.wk.test", Candidates: []tlsmode.Candidate{{Port: 587, Mode: S}}, Source: "autoconfig", Username: "someone@wk.test"}}},
		{"someone@plainonly.test", []submit.Server{{Host: "mail.plainonly.test", Candidates: []tlsmode.Candidate{{Port: 587, Mode: S}}, Source: "srv"}}},
		// The redirect to plain HTTP is followed by the client but its
		// document is not trusted; the MX at Google decides.
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
	if web.plainRequests.Load() != 1 {
		t.Errorf("plain HTTP requests = %d; want exactly the one redirect", web.plainRequests.Load())
	}

	_, err := l.Lookup(context.Background(), "someone@nothing.test")
	if !errors.Is(err, submit.ErrNoServer) {
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
	l := &submit.Lookuper{HTTPClient: web.client, Resolver: ns.Resolver,
		AutoconfigURLs: func(domain string) []string { return []string{"http://" + domain + "/cfg"} }}
	_, err := l.Lookup(context.Background(), "a@x.test")
	if !errors.Is(err, submit.ErrNoServer) || !strings.Contains(err.Error(), "not HTTPS, ignored") {
		t.Errorf("err = %v", err)
	}
	if n := web.plainRequests.Load(); n != 0 {
		t.Errorf("%d plain HTTP requests", n)
	}
}

func TestLookupRefusesWhatIsNotAnAddress(t *testing.T) {
	for _, email := range []string{"", "nobody", "@example.com", "a@", "a@b@c.test", "a@localhost", "a@exa mple.com"} {
		if _, err := new(submit.Lookuper).Lookup(context.Background(), email); !errors.Is(err, submit.ErrBadAddress) {
			t.Errorf("Lookup(%q) err = %v; want ErrBadAddress", email, err)
		}
	}
}
