package diag

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"time"
)

// CertNames lists the names a certificate covers: its DNS names and IP
// addresses, or "CN=..." when it has none. They are raw: show them with
// untrusted.Names.
func CertNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, "CN="+c.Subject.CommonName)
	}
	return names
}

// SelfSigned reports a certificate that signs itself. CheckSignatureFrom
// would insist on the CA flag, which self-signed server certificates
// rarely carry.
func SelfSigned(c *x509.Certificate) bool {
	return c.Issuer.String() == c.Subject.String() && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// LooksLikeSMTP reports whether h starts like an SMTP reply: three digits,
// the first 1-5.
func LooksLikeSMTP(h []byte) bool {
	return len(h) >= 3 && h[0] >= '1' && h[0] <= '5' && h[1] >= '0' && h[1] <= '9' && h[2] >= '0' && h[2] <= '9'
}

// ClearGreeting returns the start of an SMTP reply that arrived where a TLS
// record was expected (an implicit TLS attempt on a STARTTLS port), or "".
func ClearGreeting(err error) string {
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) || !LooksLikeSMTP(rh.RecordHeader[:]) {
		return ""
	}
	return strings.TrimSpace(string(rh.RecordHeader[:]))
}

// VersionProblem reports a handshake that failed on the protocol version:
// crypto/tls says so only in its messages.
func VersionProblem(err error) bool {
	if a := Alert(err); a == "protocol version not supported" {
		return true
	}
	return strings.Contains(err.Error(), "protocol version")
}

// Alert returns the TLS alert the server sent to end the handshake
// ("internal error", "handshake failure"), or "". crypto/tls reports a
// received alert as a *net.OpError whose Op is "remote error".
func Alert(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		return strings.TrimPrefix(op.Err.Error(), "tls: ")
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return strings.TrimPrefix(ae.Error(), "tls: ")
	}
	return ""
}

// Round rounds a duration for a person: 10ms steps above a second, 0.1ms
// steps above a millisecond, microseconds below.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
