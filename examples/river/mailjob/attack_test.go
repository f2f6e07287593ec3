package mailjob_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// TestForgedDialFailuresDoNotCancel plays, on the wire, three failures that
// anyone on the path can forge before TLS is verified: a 554 greeting, a
// banner that is not SMTP, and a TLS alert in place of the server's
// handshake. None is about the message, so none may cancel its job: the
// job must be retried with River's backoff until its MaxAttempts, and the
// queue must not be emptied by whoever sits on the path.
func TestForgedDialFailuresDoNotCancel(t *testing.T) {
	// A fatal handshake_failure alert (RFC 8446 §6): what a middlebox
	// answers a ClientHello with to end a TLS session it cannot read.
	const alert = "\x15\x03\x03\x00\x02\x02\x28"
	tests := []struct {
		name  string
		steps []script.Step
		seen  string // in the job's last error
		tls   bool   // the listener is an implicit TLS port
	}{
		{"a forged 554 greeting", []script.Step{
			script.Send("554 5.7.1 No SMTP service here\r\n"), script.Close(),
		}, "554 5.7.1", false},
		{"a garbage banner", []script.Step{
			script.Send("HTTP/1.1 400 Bad Request\r\n\r\n"), script.Close(),
		}, "banner", false},
		// On an implicit TLS port: the alert answers the ClientHello,
		// and the connection stays open so that the client reads it
		// rather than a reset.
		{"a forged TLS alert", []script.Step{
			script.Send(alert), script.Pause(5 * time.Second), script.Close(),
		}, "handshake failure", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const attempts = 2
			srv := submittest.NewServer(t)
			cand := srv.ListenScript(submittest.Options{}, tt.steps...)
			if tt.tls {
				cand.Mode = tlsmode.Implicit
			}
			c := startWorker(t, mailer(t, srv, cand), 1)
			a := message(t, tt.name, "bob@example.com")
			if _, err := c.Insert(context.Background(), a, &river.InsertOpts{MaxAttempts: attempts}); err != nil {
				t.Fatal(err)
			}
			j := waitFinal(t, c, 1)[a.MessageID]
			if j.State == rivertype.JobStateCancelled || j.Attempt != attempts {
				t.Fatalf("job %s after %d attempts, want retried until discarded after %d; errors %v", j.State, j.Attempt, attempts, j.Errors)
			}
			if last := j.Errors[len(j.Errors)-1].Error; !strings.Contains(last, tt.seen) {
				t.Errorf("last error %q lacks %q", last, tt.seen)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}
