package submittest

import "github.com/portwise/portwise/internal/testca"

// specOf is everything in Options that changes the listener certificate.
// Certificates are issued per distinct shape and cached, so ListenWith
// with the server's own Options costs no key generation.
func specOf(o Options) testca.Leaf {
	return testca.Leaf{Hostname: o.Hostname, CertName: o.CertName, Expired: o.CertExpired, NotAfter: o.CertNotAfter, SelfSigned: o.SelfSigned}
}
