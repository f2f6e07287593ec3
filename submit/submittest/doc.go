// Package submittest runs an in-process mail submission server for tests, in
// the spirit of net/http/httptest: real loopback sockets, a throwaway CA whose
// pool a client can trust, and a record of every connection and message.
//
// NewServer starts three well-behaved listeners (STARTTLS, implicit TLS and
// plaintext). Listen adds more, each with Faults that make it misbehave the
// way real networks do: STARTTLS stripped or masked by a middlebox, a
// response injected before the TLS handshake, a port that swallows packets,
// a certificate for the wrong name, a connection dropped after the final
// dot. The SMTP protocol itself is github.com/emersion/go-smtp's server; the
// faults live in a thin wrapper around each accepted connection that reads
// and rewrites only the clear-text phase, so a fault-free listener adds no
// extra network hop.
//
// # The flow
//
//	func TestSend(t *testing.T) {
//		srv := submittest.NewServer(t)                     // closed when the test ends
//		d := srv.Dialer(submit.PlainAuth("", "user", "pass")) // trusts the server's CA
//		c, err := d.Dial(ctx, "localhost")
//		...
//		msgs := srv.Messages() // what arrived, with its envelope and data
//	}
//
// Faults make a listener misbehave (srv.Listen(tlsmode.StartTLS,
// submittest.StripSTARTTLS)); Options shape the server (accounts, refused
// recipients, session limits, idle timeouts); ListenScript plays a
// byte-exact script of package script for what a real server cannot be made
// to do. Conns records each connection: what was sent in clear, the
// commands, AUTH attempts, messages.
package submittest
