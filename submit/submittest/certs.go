package submittest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// authority is the throwaway CA of one Server. Leaf certificates are
// generated per distinct certificate shape and cached, so ListenWith with the
// server's own Options costs no key generation.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

// leafSpec is everything in Options that changes the listener certificate.
type leafSpec struct {
	hostname   string
	certName   string
	expired    bool
	notAfter   time.Time
	selfSigned bool
}

func specOf(o Options) leafSpec {
	return leafSpec{o.Hostname, o.CertName, o.CertExpired, o.CertNotAfter, o.SelfSigned}
}

func newAuthority() (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "portwise submittest CA", Organization: []string{"portwise"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &authority{cert: cert, key: key, pool: pool}, nil
}

// leaf issues a server certificate of the given shape.
func (a *authority) leaf(spec leafSpec) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if spec.certName != "" {
		tmpl.Subject.CommonName = spec.certName
		tmpl.DNSNames = []string{spec.certName}
	} else {
		tmpl.Subject.CommonName = spec.hostname
		if ip := net.ParseIP(spec.hostname); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = []string{spec.hostname}
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	}
	switch {
	case spec.expired:
		tmpl.NotBefore = now.AddDate(0, 0, -30)
		tmpl.NotAfter = now.AddDate(0, 0, -1)
	case !spec.notAfter.IsZero():
		tmpl.NotAfter = spec.notAfter
		if !tmpl.NotBefore.Before(tmpl.NotAfter) {
			tmpl.NotBefore = tmpl.NotAfter.AddDate(0, 0, -30)
		}
	}
	parent, signer := a.cert, a.key
	if spec.selfSigned {
		tmpl.Issuer = tmpl.Subject
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("submittest: issue certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}
