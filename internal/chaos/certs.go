package chaos

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/portwise/portwise/internal/testca"
)

// fastCurves leaves out the post-quantum hybrid key exchange Go offers
// first: under the race detector its key generation is most of the cost of
// a handshake, and a run makes hundreds of them.
var fastCurves = []tls.CurveID{tls.X25519}

// authority is a throwaway CA and the one leaf the fault server presents,
// valid for localhost, 127.0.0.1 and ::1. The fault server terminates TLS
// in its own front, so it has its own CA, as each submittest server does.
type authority struct {
	pool *x509.CertPool
	leaf tls.Certificate
}

func newAuthority() (*authority, error) {
	ca, err := testca.New("portwise chaos CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue(testca.Leaf{Hostname: "localhost"})
	if err != nil {
		return nil, err
	}
	return &authority{pool: ca.Pool, leaf: leaf}, nil
}
