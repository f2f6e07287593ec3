// Package tlsmode names the transport security modes of mail submission and
// the port policies that pair each port with its mode. It does no I/O.
//
// A Mode is StartTLS (connect in clear, upgrade with STARTTLS: port 587),
// Implicit (TLS from the first byte: port 465) or Plaintext (no TLS: only for
// a relay on loopback). A Candidate is a port with its mode; a policy is an
// ordered list of them:
//
//	tlsmode.Default()                     // [587/starttls 465/implicit 2525/starttls]
//	c, err := tlsmode.ParseCandidate("465/implicit")
//	tlsmode.ForPort(587)                  // StartTLS: the mode a port usually speaks
//
// A Candidate with a zero Mode states none: submit.Dialer then detects the
// mode the port speaks. package submit dials candidates; package probe
// diagnoses them.
package tlsmode
