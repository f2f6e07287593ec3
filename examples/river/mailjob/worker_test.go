package mailjob_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/mail"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/portwise/portwise/examples/river/mailjob"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// noMailerRetries turns off the Mailer's own retries of temporary
// refusals, so that every refusal the server makes reaches River and the
// tests can count River's retries. Programs keep both: the Mailer's quick
// retries, then River's slower ones.
func noMailerRetries(m *submit.Mailer) { m.MaxTries = -1 }

func mailer(t *testing.T, srv *submittest.Server, cands ...tlsmode.Candidate) *submit.Mailer {
	d := srv.Dialer(submit.PasswordAuth("user", "pass"), cands...)
	d.Timeout = 10 * time.Second
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1"}
	noMailerRetries(m)
	t.Cleanup(func() { m.Close() })
	return m
}

// startWorker runs a River client with the mail worker on a new SQLite
// file, retrying failed jobs after 20ms instead of River's backoff.
func startWorker(t *testing.T, m mailjob.Sender, workers int) mailjob.Client {
	t.Helper()
	ctx := context.Background()
	q, err := mailjob.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "queue.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	ws := river.NewWorkers()
	river.AddWorker(ws, &mailjob.Worker{Mailer: m, Logger: testLogger(t)})
	c, err := q.NewClient(&river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:           ws,
		RetryPolicy:       mailjob.FixedRetryPolicy{Delay: 20 * time.Millisecond},
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
		TestOnly:          true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stopping River: %v", err)
		}
	})
	return c
}

// testLogger sends the worker's records to the test's log, shown when it
// fails or with -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// message returns the arguments of a new message from app@example.com.
func message(t *testing.T, subject string, to ...string) mailjob.Args {
	t.Helper()
	id := mailjob.NewMessageID("example.com")
	raw := "From: app@example.com\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: " + subject +
		"\r\nMessage-ID: " + id + "\r\n\r\nHello.\r\n"
	a, err := mailjob.NewArgs("app@example.com", to, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if a.MessageID != id {
		t.Fatalf("MessageID %q, want %q", a.MessageID, id)
	}
	return a
}

// waitFinal waits until the queue holds n jobs, each completed, cancelled
// or discarded, and returns them by Message-ID.
func waitFinal(t *testing.T, c mailjob.Client, n int) map[string]*rivertype.JobRow {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := c.JobList(context.Background(), river.NewJobListParams().First(10_000))
		if err != nil {
			t.Fatal(err)
		}
		final := 0
		for _, j := range res.Jobs {
			switch j.State {
			case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
				final++
			}
		}
		if len(res.Jobs) == n && final == n {
			return byMessageID(t, res.Jobs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs, %d of them final, want %d final", len(res.Jobs), final, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func byMessageID(t *testing.T, jobs []*rivertype.JobRow) map[string]*rivertype.JobRow {
	t.Helper()
	out := make(map[string]*rivertype.JobRow, len(jobs))
	for _, j := range jobs {
		var a mailjob.Args
		if err := unmarshalArgs(j, &a); err != nil {
			t.Fatal(err)
		}
		out[a.MessageID] = j
	}
	return out
}

// deliveries counts the server's messages by their Message-ID field.
func deliveries(t *testing.T, srv *submittest.Server) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, m := range srv.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("message %q: %v", m.Data, err)
		}
		n[msg.Header.Get("Message-Id")]++
	}
	return n
}

// commands counts the commands the server received that start with prefix.
func commands(srv *submittest.Server, prefix string) int {
	n := 0
	for _, c := range srv.Conns() {
		for _, cmd := range c.Commands {
			if strings.HasPrefix(cmd, prefix) {
				n++
			}
		}
	}
	return n
}

// TestTemporaryFailuresAreRetriedByRiverAndDeliveredOnce runs 40 messages
// through a server that answers every 4th MAIL FROM with a 451, plus one
// to a recipient it refuses with a 550: every temporary refusal becomes
// one River retry, every message arrives exactly once, and the refused one
// is cancelled after its first refusal by the recipient.
func TestTemporaryFailuresAreRetriedByRiverAndDeliveredOnce(t *testing.T) {
	const n, every = 40, 4
	srv := submittest.NewServer(t, submittest.Options{
		FailEvery:        every,
		RejectRecipients: map[string]string{"nobody@example.com": "550 5.1.1 <nobody@example.com>: no such user"},
	})
	c := startWorker(t, mailer(t, srv), 4)
	ctx := context.Background()

	params := make([]river.InsertManyParams, 0, n)
	for i := range n {
		params = append(params, river.InsertManyParams{Args: message(t, fmt.Sprint("message ", i), "bob@example.com")})
	}
	if _, err := c.InsertMany(ctx, params); err != nil {
		t.Fatal(err)
	}
	waitFinal(t, c, n)
	// The refused message goes last, alone: after a transaction whose
	// every recipient was refused, portwise sends the next MAIL FROM on
	// the same connection without RSET, and when the server refuses that
	// MAIL FROM (here the 451, on Postfix "503 nested MAIL command"), the
	// old transaction takes the next RCPT and an empty message is
	// delivered. That is a bug of submit's send path, not of the worker.
	refused := message(t, "to nobody", "nobody@example.com")
	if _, err := c.Insert(ctx, refused, nil); err != nil {
		t.Fatal(err)
	}
	jobs := waitFinal(t, c, n+1)

	got := deliveries(t, srv)
	retries, errs, maxAttempt := 0, 0, 0
	for id, j := range jobs {
		errs += len(j.Errors)
		maxAttempt = max(maxAttempt, j.Attempt)
		if id == refused.MessageID {
			continue
		}
		if j.State != rivertype.JobStateCompleted {
			t.Errorf("job %d (%s): %s, want completed; errors %v", j.ID, id, j.State, j.Errors)
		}
		if got[id] != 1 {
			t.Errorf("%s delivered %d times, want 1", id, got[id])
		}
		if len(j.Errors) != j.Attempt-1 {
			t.Errorf("job %d: %d attempts and %d errors", j.ID, j.Attempt, len(j.Errors))
		}
		for _, e := range j.Errors {
			if !strings.Contains(e.Error, "451 4.3.0") {
				t.Errorf("job %d: attempt %d failed with %q, want the server's 451", j.ID, e.Attempt, e.Error)
			}
		}
		retries += j.Attempt - 1
	}
	if len(srv.Messages()) != n {
		t.Errorf("%d messages delivered, want %d", len(srv.Messages()), n)
	}

	r := jobs[refused.MessageID]
	if r.State != rivertype.JobStateCancelled || got[refused.MessageID] != 0 {
		t.Errorf("the message to nobody: %s, delivered %d times; want cancelled, never delivered", r.State, got[refused.MessageID])
	}
	if last := r.Errors[len(r.Errors)-1].Error; !strings.Contains(last, "refused permanently for nobody@example.com (550 5.1.1") {
		t.Errorf("the message to nobody was cancelled with %q", last)
	}
	if n := commands(srv, "RCPT TO:<nobody@example.com>"); n != 1 {
		t.Errorf("nobody@example.com was tried %d times, want once", n)
	}

	// Every 451 the server sent is one River retry, and each job error is
	// one of them, but for the one cancellation.
	refusals := commands(srv, "MAIL FROM:") / every
	if refusals == 0 || errs != refusals+1 {
		t.Errorf("%d MAIL FROMs refused with 451, %d job errors; want one error per refusal plus the cancellation", refusals, errs)
	}
	t.Logf("%d messages delivered once each, %d River retries of them (%d 451s in all), at most %d attempts for a job",
		n, retries, refusals, maxAttempt)

	// The Message-ID makes the job unique: enqueueing a delivered message
	// again is a duplicate, not a second delivery.
	for id := range jobs {
		if id == refused.MessageID {
			continue
		}
		var a mailjob.Args
		if err := unmarshalArgs(jobs[id], &a); err != nil {
			t.Fatal(err)
		}
		res, err := c.Insert(ctx, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.UniqueSkippedAsDuplicate || res.Job.ID != jobs[id].ID {
			t.Errorf("enqueueing %s again made job %d (duplicate %v), want job %d found as a duplicate", id, res.Job.ID, res.UniqueSkippedAsDuplicate, jobs[id].ID)
		}
		break
	}
}

// TestPartialDeliveryNeverResendsToRecipientsWhoHaveIt checks the choice
// for a SendError after which some recipients have the message: they are
// recorded in the job's metadata and never sent it again; River retries the
// ones refused with a 4xx, and the job ends cancelled naming the ones
// refused with a 5xx.
func TestPartialDeliveryNeverResendsToRecipientsWhoHaveIt(t *testing.T) {
	const attempts = 3
	tests := []struct {
		name      string
		to        []string
		state     rivertype.JobState
		attempts  int
		delivered []string
		refused   []string
		rcpts     map[string]int // RCPT TO commands per recipient
		lastErr   string
	}{
		{
			name: "one recipient refused with a 4xx", to: []string{"bob@example.com", "busy@example.com"},
			state: rivertype.JobStateDiscarded, attempts: attempts,
			delivered: []string{"bob@example.com"},
			rcpts:     map[string]int{"bob@example.com": 1, "busy@example.com": attempts},
			lastErr:   "450 4.2.1",
		},
		{
			name: "one recipient refused with a 5xx", to: []string{"bob@example.com", "nobody@example.com"},
			state: rivertype.JobStateCancelled, attempts: 1,
			delivered: []string{"bob@example.com"}, refused: []string{"nobody@example.com"},
			rcpts:   map[string]int{"bob@example.com": 1, "nobody@example.com": 1},
			lastErr: "refused permanently for nobody@example.com (550 5.1.1 no such user); delivered to bob@example.com",
		},
		{
			name: "one 4xx, one 5xx", to: []string{"bob@example.com", "busy@example.com", "nobody@example.com"},
			state: rivertype.JobStateDiscarded, attempts: attempts,
			delivered: []string{"bob@example.com"}, refused: []string{"nobody@example.com"},
			rcpts:   map[string]int{"bob@example.com": 1, "busy@example.com": attempts, "nobody@example.com": 1},
			lastErr: "450 4.2.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{
				"busy@example.com":   "450 4.2.1 mailbox busy, try again later",
				"nobody@example.com": "550 5.1.1 no such user",
			}})
			c := startWorker(t, mailer(t, srv), 2)
			a := message(t, tt.name, tt.to...)
			if _, err := c.Insert(context.Background(), a, &river.InsertOpts{MaxAttempts: attempts}); err != nil {
				t.Fatal(err)
			}
			j := waitFinal(t, c, 1)[a.MessageID]
			if j.State != tt.state || j.Attempt != tt.attempts {
				t.Errorf("job %s after %d attempts, want %s after %d; errors %v", j.State, j.Attempt, tt.state, tt.attempts, j.Errors)
			}
			if last := j.Errors[len(j.Errors)-1].Error; !strings.Contains(last, tt.lastErr) {
				t.Errorf("last error %q, want %q in it", last, tt.lastErr)
			}
			p, err := mailjob.ProgressOf(j)
			if err != nil {
				t.Fatal(err)
			}
			var refused []string
			for _, r := range p.Refused {
				refused = append(refused, r.Addr)
			}
			if !slices.Equal(p.Delivered, tt.delivered) || !slices.Equal(refused, tt.refused) {
				t.Errorf("progress: delivered %v, refused %v; want %v, %v", p.Delivered, refused, tt.delivered, tt.refused)
			}
			for addr, want := range tt.rcpts {
				if got := commands(srv, "RCPT TO:<"+addr+">"); got != want {
					t.Errorf("RCPT TO:<%s> sent %d times, want %d", addr, got, want)
				}
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || deliveries(t, srv)[a.MessageID] != 1 || !slices.Equal(msgs[0].To, tt.delivered) {
				t.Errorf("%d messages; want the message once, to %v", len(msgs), tt.delivered)
			}
		})
	}
}

// TestOutcomeUnknownIsCancelledNotRetried: the server takes the message and
// drops the connection before answering the final dot. The job must not be
// retried (that would be a second delivery): it is cancelled after one
// attempt with an error that says the message may have been delivered.
func TestOutcomeUnknownIsCancelledNotRetried(t *testing.T) {
	srv := submittest.NewServer(t)
	c := startWorker(t, mailer(t, srv, srv.Listen(tlsmode.Implicit, submittest.DropAfterDot)), 1)
	a := message(t, "dropped after the dot", "bob@example.com")
	if _, err := c.Insert(context.Background(), a, &river.InsertOpts{MaxAttempts: 5}); err != nil {
		t.Fatal(err)
	}
	j := waitFinal(t, c, 1)[a.MessageID]
	if j.State != rivertype.JobStateCancelled || j.Attempt != 1 {
		t.Errorf("job %s after %d attempts, want cancelled after 1", j.State, j.Attempt)
	}
	for _, want := range []string{a.MessageID, "may have been delivered to bob@example.com", "check the recipients' mailboxes"} {
		if !strings.Contains(j.Errors[0].Error, want) {
			t.Errorf("error %q lacks %q", j.Errors[0].Error, want)
		}
	}
	if n := deliveries(t, srv)[a.MessageID]; n != 1 {
		t.Errorf("the server received the message %d times, want 1", n)
	}
}

func TestNewArgs(t *testing.T) {
	tests := []struct {
		name, msg string
		from      string
		to        []string
		wantID    string
		wantErr   string
	}{
		{"Message-ID taken from the header", "Subject: x\r\nMessage-ID: <a1@example.com>\r\n\r\nbody", "a@x", []string{"b@x"}, "<a1@example.com>", ""},
		{"field name in any case, folded spaces trimmed", "message-id:   <a2@example.com> \r\n\r\n", "a@x", []string{"b@x"}, "<a2@example.com>", ""},
		{"no Message-ID", "Subject: x\r\n\r\nbody", "a@x", []string{"b@x"}, "", "no Message-ID field"},
		{"no recipient", "Message-ID: <a3@example.com>\r\n\r\n", "a@x", nil, "", "at least one recipient"},
		{"no header", "just a body", "a@x", []string{"b@x"}, "", "reading the message's header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := mailjob.NewArgs(tt.from, tt.to, []byte(tt.msg))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.MessageID != tt.wantID || a.Kind() != mailjob.Kind || string(a.Message) != tt.msg {
				t.Errorf("got %+v", a)
			}
		})
	}
}

func unmarshalArgs(j *rivertype.JobRow, a *mailjob.Args) error {
	return json.Unmarshal(j.EncodedArgs, a)
}
