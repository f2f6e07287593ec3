package submit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/netem"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// subjects returns the Subject of every message the server stored, to
// count deliveries per message.
func subjects(srv *submittest.Server) map[string]int {
	got := map[string]int{}
	for _, m := range srv.Messages() {
		for _, l := range strings.Split(string(m.Data), "\r\n") {
			if s, ok := strings.CutPrefix(l, "Subject: "); ok {
				got[s]++
				break
			}
		}
	}
	return got
}

func TestMailerStaysWithinTheSessionsTheServerAccepts(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{MaxSessions: 2})
	var retries sync.Map
	m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{RetryDelay: 20 * time.Millisecond})
	ctx := submit.WithTrace(context.Background(), &submit.Trace{Retry: func(r submit.Retry) {
		retries.Store(r.Try, r.Err)
	}})
	const goroutines, each = 10, 4
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := fmt.Sprintf("Subject: g%d-m%d\r\n\r\nbody\r\n", g, i)
				if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(msg)); err != nil {
					errs <- fmt.Errorf("g%d m%d: %w", g, i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := subjects(srv)
	if len(got) != goroutines*each {
		t.Errorf("%d distinct messages delivered, want %d", len(got), goroutines*each)
	}
	for s, n := range got {
		if n != 1 {
			t.Errorf("%s delivered %d times", s, n)
		}
	}
	// The server admits 2 sessions and greets a third with 421: count the
	// connections it turned away (no command on them).
	refused := 0
	for _, c := range connsOn(srv, srv.Addr(addr)) {
		if len(c.Commands) == 0 {
			refused++
		}
	}
	st := m.Stats()
	t.Logf("%d sessions refused, %d retries; stats %+v", refused, st.Retried, st)
	// One refusal teaches the Mailer the limit; it probes one more
	// connection after every 20 messages sent.
	if refused < 1 || refused > 1+goroutines*each/20 {
		t.Errorf("%d sessions refused; want at least 1 (the limit found) and at most %d", refused, 1+goroutines*each/20)
	}
	if st.Retried != uint64(refused) || st.Sent != goroutines*each || st.Failed != 0 {
		t.Errorf("stats %+v; want %d retries (one per refusal), %d sent, none failed", st, refused, goroutines*each)
	}
	if st.MaxConns < 2 || st.MaxConns > 3 {
		t.Errorf("MaxConns in effect %d; want 2 (learnt), or 3 after a probe", st.MaxConns)
	}
}

func TestMailerRetriesTemporaryRefusalsBeforeTheBody(t *testing.T) {
	srv := submittest.NewServer(t)
	// Every third MAIL FROM the server receives is refused with 451.
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{FailEvery: 3})
	var logs bytes.Buffer
	m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{RetryDelay: time.Millisecond})
	m.Dialer.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	var mu sync.Mutex
	var seen []submit.Retry
	ctx := submit.WithTrace(context.Background(), &submit.Trace{Retry: func(r submit.Retry) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
	}})
	const n = 30
	for i := range n {
		msg := fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i)
		if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(msg)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	got := subjects(srv)
	for i := range n {
		if c := got[fmt.Sprintf("m%d", i)]; c != 1 {
			t.Errorf("m%d delivered %d times", i, c)
		}
	}
	st := m.Stats()
	// Every MAIL FROM beyond the n that succeeded was a refusal retried,
	// and every third the server received was one.
	mails := 0
	for _, c := range commandsOn(srv, srv.Addr(addr)) {
		if strings.HasPrefix(c, "MAIL FROM") {
			mails++
		}
	}
	r := mails - n
	if r != mails/3 || st.Retried != uint64(r) || len(seen) != r || st.Sent != n {
		t.Fatalf("%d MAIL FROMs; stats %+v, %d Retry hooks; want %d retries and %d sent", mails, st, len(seen), mails/3, n)
	}
	for _, r := range seen {
		var se *submit.StepError
		if r.Try != 1 || r.Delay <= 0 || r.Delay > time.Millisecond || !errors.As(r.Err, &se) || se.Step != "MAIL FROM" || se.Reply.Code != 451 {
			t.Errorf("Retry %+v; want attempt 1, a delay of at most 1ms, MAIL FROM's 451", r)
		}
	}
	if c := strings.Count(logs.String(), "portwise retry"); c != r {
		t.Errorf("%d retry records in the log, want %d:\n%s", c, r, logs.String())
	}
}

func TestMailerRetryDecisions(t *testing.T) {
	tests := []struct {
		name      string
		opts      submittest.Options
		mailer    func() *submit.Mailer
		wantErr   func(error) bool
		wantTries int // MAIL FROMs the server saw
	}{
		{
			name:      "turned off",
			opts:      submittest.Options{FailEvery: 1},
			mailer:    func() *submit.Mailer { return &submit.Mailer{MaxTries: -1} },
			wantErr:   submit.IsTemporary,
			wantTries: 1,
		},
		{
			name:      "at most MaxTries",
			opts:      submittest.Options{FailEvery: 1},
			mailer:    func() *submit.Mailer { return &submit.Mailer{MaxTries: 3, RetryDelay: time.Millisecond} },
			wantErr:   submit.IsTemporary,
			wantTries: 3,
		},
		{
			name:      "a permanent refusal is final",
			opts:      submittest.Options{FailEvery: 1, FailReply: "550 5.7.1 sender refused"},
			mailer:    func() *submit.Mailer { return &submit.Mailer{RetryDelay: time.Millisecond} },
			wantErr:   func(err error) bool { return err != nil && !submit.IsTemporary(err) },
			wantTries: 1,
		},
		{
			name:   "every recipient refused for now",
			opts:   submittest.Options{RejectRecipients: map[string]string{"b@example.com": "450 4.2.1 mailbox busy"}},
			mailer: func() *submit.Mailer { return &submit.Mailer{MaxTries: 2, RetryDelay: time.Millisecond} },
			wantErr: func(err error) bool {
				var se *submit.SendError
				return errors.As(err, &se) && se.Accepted == 0 && se.Temporary()
			},
			wantTries: 2,
		},
		{
			name:   "the message went out and the outcome is unknown",
			mailer: func() *submit.Mailer { return &submit.Mailer{RetryDelay: time.Millisecond} },
			wantErr: func(err error) bool {
				return errors.Is(err, submit.ErrOutcomeUnknown)
			},
			wantTries: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			var addr tlsmode.Candidate
			if tt.wantTries == 1 && tt.opts.FailEvery == 0 {
				addr = srv.Listen(tlsmode.Implicit, submittest.DropAfterDot)
			} else {
				addr = srv.ListenWith(tlsmode.Implicit, tt.opts)
			}
			m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, tt.mailer())
			err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
			if !tt.wantErr(err) {
				t.Fatalf("err = %v", err)
			}
			tries := 0
			for _, c := range commandsOn(srv, srv.Addr(addr)) {
				if strings.HasPrefix(c, "MAIL FROM") {
					tries++
				}
			}
			if tries != tt.wantTries {
				t.Errorf("%d MAIL FROMs, want %d", tries, tt.wantTries)
			}
			unknown := errors.Is(err, submit.ErrOutcomeUnknown)
			if st := m.Stats(); st.Retried != uint64(tt.wantTries-1) || (st.Unknown == 1) != unknown || st.Failed+st.Unknown != 1 {
				t.Errorf("stats %+v, want %d retried, 1 failed or (outcome unknown) 1 unknown", st, tt.wantTries-1)
			}
		})
	}
}

func TestMailerDoesNotRetryARefusalAfterTheBody(t *testing.T) {
	srv := submittest.NewServer(t)
	// The message is refused for now after the server read it all: it was
	// sent, and is never sent again.
	sc := srv.ListenScript(submittest.Options{}, implicitScript(chunkingCaps,
		script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
		script.Send("250 ok\r\n250 ok\r\n451 4.3.0 try again later\r\n"),
		script.Expect("QUIT"), script.Send("221 bye\r\n"),
	)...)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1", RetryDelay: time.Millisecond}
	err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	var se *submit.StepError
	if !errors.As(err, &se) || se.Step != "message" || !submit.IsTemporary(err) {
		t.Fatalf("err = %v, want the message's temporary refusal", err)
	}
	m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recs, _ := srv.WaitScripts(ctx, sc)
	if len(recs) != 1 || recs[0].Err != nil || len(recs[0].Messages) != 1 {
		t.Fatalf("the server saw %d connections (%v): the message went again", len(recs), recs)
	}
	if st := m.Stats(); st.Retried != 0 {
		t.Errorf("stats %+v, want no retry", st)
	}
}

func TestMailerNeverRetriesATemporaryAuthFailure(t *testing.T) {
	// maddy answers a wrong password with 454: retrying it is a second
	// login attempt with the same wrong password.
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{AuthReply: "454 4.7.0 Temporary authentication failure"})
	m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{RetryDelay: time.Millisecond})
	err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	if !submit.IsTemporary(err) {
		t.Fatalf("err = %v, want the temporary AUTH refusal", err)
	}
	auths := 0
	for _, c := range connsOn(srv, srv.Addr(addr)) {
		auths += c.AuthAttempts
	}
	if auths != 1 {
		t.Errorf("%d AUTH attempts, want 1", auths)
	}
}

func TestMailerRetryWaitsOnlyWithinTheDeadline(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{FailEvery: 1})
	m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{RetryDelay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t0 := time.Now()
	err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	var se *submit.StepError
	if !errors.As(err, &se) || se.Reply == nil || se.Reply.Code != 451 || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the server's 451 (a wait past the deadline is not started)", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Send took %s; it waited for a retry it could not make", d)
	}
}

func TestMailerRateLimitSpacesMessagesAcrossConnections(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit)
	// Each message takes a 50 ms round trip, so three senders need
	// several connections; the rate holds across them all.
	proxy, err := netem.NewProxy(srv.Addr(addr), 25*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// 10 messages per 200 ms: one every 20 ms, whatever the connection.
	m, _ := mailerFor(t, srv, tlsmode.Candidate{Port: proxy.Port(), Mode: tlsmode.Implicit}, tlsmode.Implicit,
		&submit.Mailer{RateLimit: 10, RateInterval: 200 * time.Millisecond})
	var mu sync.Mutex
	var done []time.Time
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 7 {
				msg := fmt.Sprintf("Subject: g%d-%d\r\n\r\nx\r\n", g, i)
				if err := m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(msg)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				done = append(done, time.Now())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	// Eleven messages need ten intervals of 20 ms at least; allow 10 ms
	// for the sends' own time between token and reply.
	for i := 0; i+10 < len(done); i++ {
		if d := done[i+10].Sub(done[i]); d < 190*time.Millisecond {
			t.Fatalf("messages %d..%d went in %s; want at least 200 ms for 11 at 10 per 200 ms", i, i+10, d)
		}
	}
	if m.Stats().Open < 2 {
		t.Errorf("the test used %d connection(s); the limit must hold across several", m.Stats().Open)
	}
	// A turn beyond the caller's deadline is a wait error, at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	m2, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{RateLimit: 1, RateInterval: time.Hour})
	m2.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	if err := m2.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "RateLimit") {
		t.Errorf("err = %v, want the deadline, waiting under RateLimit", err)
	}
}

func TestMailerStats(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit)
	m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{MaxConns: 1})
	if st := m.Stats(); st != (submit.MailerStats{MaxConns: 1}) {
		t.Errorf("a new Mailer: %+v", st)
	}
	release := make(chan struct{})
	slow := make(chan error, 1)
	go func() {
		_, err := m.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, stalled(release), &submit.SendOptions{NoChunking: true})
		slow <- err
	}()
	eventually(t, "the slow send in DATA", func() bool {
		cmds := commandsOn(srv, srv.Addr(addr))
		return len(cmds) > 0 && cmds[len(cmds)-1] == "DATA"
	})
	waiting := make(chan error, 1)
	go func() {
		waiting <- m.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	}()
	eventually(t, "a waiter", func() bool { return m.Stats().Waiters == 1 })
	if st := m.Stats(); st.Open != 1 || st.Busy != 1 || st.Idle != 0 {
		t.Errorf("one busy connection, one waiter: %+v", st)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Open != 1 || st.Idle != 1 || st.Busy != 0 || st.Waiters != 0 || st.Sent != 2 || st.Failed != 0 {
		t.Errorf("after both: %+v", st)
	}
}
