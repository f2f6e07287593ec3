// Package testca issues the throwaway certificates of portwise's test
// servers (submittest's and the chaos test's): a CA per server, and server
// certificates of the shapes the tests need, expired or self-signed ones
// included.
package testca

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

// Authority is a throwaway CA.
type Authority struct {
	Cert *x509.Certificate
	Pool *x509.CertPool // trusts Cert alone
	key  *ecdsa.PrivateKey
}

// Leaf is the shape of a server certificate. It is comparable, so that a
// server can keep the certificates it issued by shape.
type Leaf struct {
	// Hostname is the certificate's name: an IP address or a DNS name.
	// 127.0.0.1 and ::1 are added to it.
	Hostname string
	// CertName, when set, is the certificate's only name instead.
	CertName string
	// Expired makes a certificate that expired yesterday.
	Expired bool
	// NotAfter, when set, ends its validity.
	NotAfter time.Time
	// SelfSigned signs it with its own key, not the CA's.
	SelfSigned bool
}

// New makes a CA named name, valid from an hour ago for ten years.
func New(name string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"portwise"}},
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
	return &Authority{Cert: cert, Pool: pool, key: key}, nil
}

// Issue makes a server certificate of the shape l, signed by a unless
// l.SelfSigned, valid for a year unless l says otherwise.
func (a *Authority) Issue(l Leaf) (tls.Certificate, error) {
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
	if l.CertName != "" {
		tmpl.Subject.CommonName = l.CertName
		tmpl.DNSNames = []string{l.CertName}
	} else {
		tmpl.Subject.CommonName = l.Hostname
		if ip := net.ParseIP(l.Hostname); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = []string{l.Hostname}
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	}
	switch {
	case l.Expired:
		tmpl.NotBefore = now.AddDate(0, 0, -30)
		tmpl.NotAfter = now.AddDate(0, 0, -1)
	case !l.NotAfter.IsZero():
		tmpl.NotAfter = l.NotAfter
		if !tmpl.NotBefore.Before(tmpl.NotAfter) {
			tmpl.NotBefore = tmpl.NotAfter.AddDate(0, 0, -30)
		}
	}
	parent, signer := a.Cert, a.key
	if l.SelfSigned {
		tmpl.Issuer = tmpl.Subject
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testca: issuing a certificate: %w", err)
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
