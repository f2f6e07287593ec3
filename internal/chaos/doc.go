// Package chaos is portwise's fault-injection test, in the spirit of
// Jepsen: a Mailer (8 goroutines, MaxConns 3, seekable and non-seekable
// bodies, BDAT and DATA, each Send with its own short deadline) sends
// through a TCP proxy on loopback to a server that counts the copies it
// stores of each message, while both inject faults from a seeded plan.
//
// The proxy, per connection: a reset (RST both ways), a half-close or a
// stall (with or without reading, so that the sender's buffers fill) at a
// byte offset of either direction, or just before, in, just after or one
// byte past the final reply to the k-th message on the connection. TLS is
// end to end, so the proxy never forges a reply; the server records where
// each final reply's bytes lie before writing them, and the proxy strikes
// there.
//
// The server (go-smtp v0.25.1 behind a front that terminates TLS) decides
// its own faults, so that its accounting stays true: a 421 greeting,
// refusals of EHLO or STARTTLS in clear, 4xx and 5xx to any command
// (EHLO, AUTH, MAIL, RCPT, DATA, BDAT, RSET, NOOP), a connection reset a
// few bytes before the end of a body, 451, 554 or 421 after a whole body
// (not stored), a reset after a whole body (stored or not), unsolicited
// 421s on idle sessions (one or two lines), CHUNKING on some connections
// only. It stores a copy only of a message that ends with its marker line.
// Each seed also picks a scenario (ScenarioOf): the TLS mode, a credential
// revoked part way, Close while Sends are in flight, a first connection
// that stalls while every other Send waits for it.
//
// The invariants, checked after Close: a Send that returned nil stored
// exactly one copy; ErrOutcomeUnknown at most one; any other error none;
// never two; the server never saw MAIL FROM for a message after it had its
// whole body in a transaction with a recipient (a body sent after every
// RCPT TO was refused reaches nobody, and may be sent again); every body
// stored is the message sent; every Send returned
// by its context's end plus a slack; an error wraps context.Canceled or
// DeadlineExceeded only when the Send's own context ended so; no client
// socket and no goroutine is left. When the scenario revokes the
// credential, no AUTH with it reaches the server on a session opened after
// a client was told it was rejected, and every Send started after one
// returned ErrAuthFailed fails with it without connecting.
//
// Run with a seed replays a run: the same scenario, messages and
// connection plans (connections are numbered as the proxy accepts them, so
// thread scheduling can still change which plan meets which message).
// CONTRIBUTING.md says how to run it and what a long run found.
package chaos
