// Package submit sends mail the way a careful mail client does: it races the
// submission ports of a policy, insists on verified TLS, refuses to continue
// when STARTTLS is stripped or responses are injected, authenticates only over
// verified TLS, sends each message exactly once, and explains every failure in
// words a person can act on.
//
// # The flow
//
// A Dialer opens an authenticated Client; the Client sends messages:
//
//	d := &submit.Dialer{
//		// Candidates: nil means 587/STARTTLS, 465/implicit TLS, 2525/STARTTLS.
//		Auth: submit.PasswordAuth("app@example.com", os.Getenv("SMTP_PASSWORD")),
//	}
//	c, err := d.Dial(ctx, "smtp.example.com")
//	if err != nil {
//		log.Fatal(err) // *DialError: the outcome, then one line per port
//	}
//	defer c.Quit()
//	res, err := c.SendWith(ctx, "app@example.com", []string{"you@example.com"}, strings.NewReader(msg), nil)
//	if errors.Is(err, submit.ErrOutcomeUnknown) {
//		// the connection broke after the message went out: the server may have it
//	}
//	log.Printf("%s, queued as %s", res.Outcome, res.QueueID)
//
// Dial plans its targets once (the remembered winner first, servers found by
// Dialer.Discover ahead of the policy), starts them FallbackDelay apart as
// net's dual-stack dialer does, and takes the first port whose session is
// secure (connect, banner, EHLO, STARTTLS and its guard, the TLS handshake,
// EHLO again). AUTH then runs on that session only: the credential goes to one
// port per Dial, whatever the reply. DialServers does the same over several
// servers, such as discover.Lookup finds.
//
// A program that sends from many goroutines shares one Mailer, a pool of
// authenticated connections that keeps to a provider's limits:
//
//	m := &submit.Mailer{Dialer: d, Host: "smtp.example.com"} // MaxConns 3, MaxIdle 2, ...
//	defer m.Close()
//	err := m.Send(ctx, from, to, strings.NewReader(msg))
//
// SendMail is net/smtp.SendMail's drop-in; ParseURL builds a Dialer from one
// "smtps://user:pass@host" URL; Trace hooks (WithTrace) follow a Dial and a
// message for metrics and tracing, as net/http/httptrace does for HTTP.
//
// # Words
//
//   - Candidate (tlsmode.Candidate): a port and its TLS mode, "587/starttls".
//     The policy is the list of candidates a Dial may try.
//   - Server: a host with its candidates, as discovery finds them.
//   - Target: one host and candidate of a Dial's plan, in the order they start.
//   - Attempt: one target's run in a Dial, from connect to a secure session
//     (and AUTH when it wins), and the record of how it ended; hooks and
//     DialError.Attempts carry it. Its ID is its connection's ID.
//   - Winner: the attempt whose session becomes the Client; the Dialer
//     remembers it per host (Dialer.Winners) and tries it first next time.
//   - Outcome: what the server may have of a message once its send ended:
//     not sent, accepted, refused, or unknown. A message is sent again (by a
//     Mailer) only when it was not sent.
//
// # Errors
//
// A failed Dial is a *DialError, a failed step a *StepError holding the
// server's *Reply; refused recipients are a *SendError. Every error that has
// a sentinel wraps it (errors.Is), KindOf says what kind of failure it is,
// IsTemporary whether trying later may work, and Advice what to do.
// README.md has the tables.
package submit
