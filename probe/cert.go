package probe

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/diag"
	"github.com/portwise/portwise/internal/untrusted"
)

// checkTLS records the TLS parameters and verifies the certificate the way
// submit.Dialer would (chain to the roots, validity period, host name),
// but each check separately, so that the report can say which ones fail.
func (p *prober) checkTLS(r *PortReport, st tls.ConnectionState) {
	r.TLSVersion = tls.VersionName(st.Version)
	r.TLSCipher = tls.CipherSuiteName(st.CipherSuite)
	r.OCSPStapled = len(st.OCSPResponse) > 0
	if len(st.PeerCertificates) == 0 {
		r.CertError = "the server sent no certificate"
		p.addf(r, SeverityCritical, CodeCertUntrusted, "port %d: %s", r.Port, r.CertError)
		return
	}
	leaf := st.PeerCertificates[0]
	r.CertSubjects = diag.CertNames(leaf)
	// The names are the server's: they go into messages made safe.
	names := untrusted.Names(r.CertSubjects, "names")
	r.CertIssuer = leaf.Issuer.String()
	for _, c := range st.PeerCertificates {
		r.CertChain = append(r.CertChain, c.Subject.String())
	}
	now := p.now()
	r.CertNotAfter = leaf.NotAfter.UTC()
	r.CertDaysLeft = int(leaf.NotAfter.Sub(now).Hours() / 24)

	var problems []string
	fail := func(code, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		problems = append(problems, msg)
		p.addf(r, SeverityCritical, code, "port %d: %s", r.Port, msg)
	}

	// When the leaf is out of its validity period, the chain is checked
	// again inside it, so an expired certificate from an unknown issuer
	// shows both problems.
	at := now
	switch {
	case now.After(leaf.NotAfter):
		fail(CodeCertExpired, "the certificate for %s expired on %s; the server's certificate must be renewed", names, leaf.NotAfter.UTC().Format(time.DateOnly))
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	case now.Before(leaf.NotBefore):
		fail(CodeCertExpired, "the certificate for %s is not valid before %s; check the clocks of the server and of this machine", names, leaf.NotBefore.UTC().Format(time.DateTime))
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	case leaf.NotAfter.Sub(now) < ExpiringWithin:
		p.addf(r, SeverityWarning, CodeCertExpiring, "port %d: the certificate for %s expires in %d days (%s); renew it before clients start refusing the server", r.Port, names, r.CertDaysLeft, leaf.NotAfter.UTC().Format(time.DateOnly))
	}

	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	var roots *x509.CertPool
	if p.o.TLSConfig != nil {
		roots = p.o.TLSConfig.RootCAs
	}
	verify := func(t time.Time) error {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: t})
		return err
	}
	err := verify(now)
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired && !at.Equal(now) {
		// Reported above; look past it for a trust problem. The issuer may
		// not have been valid at the leaf's midpoint, which is no news.
		if err = verify(at); errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			err = nil
		}
	}
	var unknown x509.UnknownAuthorityError
	switch {
	case err == nil:
	case errors.As(err, &unknown) && diag.SelfSigned(leaf):
		fail(CodeCertUntrusted, "the certificate for %s is self-signed, so nothing vouches for it; install a certificate from a public CA (or pass this one with -ca FILE)", names)
	case errors.As(err, &unknown):
		fail(CodeCertUntrusted, "the certificate for %s is issued by \"%s\", which is not among the trusted roots; the server may be missing its intermediate certificate, or its CA must be passed with -ca FILE", names, untrusted.Name(leaf.Issuer.String()))
	default:
		fail(CodeCertUntrusted, "the certificate for %s does not verify: %s", names, untrusted.Reply(err.Error()))
	}

	if err := leaf.VerifyHostname(p.serverName); err != nil {
		fail(CodeCertNameMismatch, "the certificate covers %s, not \"%s\"; connect with a name it covers (the provider documents the right host name)", names, untrusted.Name(p.serverName))
	}

	r.CertVerified = len(problems) == 0
	if len(problems) > 0 {
		r.CertError = strings.Join(problems, "; ")
	}
}
