package fleet_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portwise/portwise/examples/river/fleet"
	"github.com/portwise/portwise/examples/river/internal/conncount"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func TestAccount(t *testing.T) {
	tests := []struct{ url, want string }{
		{"smtps://me%40example.com:app-Passw0rd@SMTP.Example.com", "smtp.example.com/me@example.com"},
		{"smtp://Printer%40Contoso.com:Passw0rd@smtp.office365.com:587", "smtp.office365.com/printer@contoso.com"},
		{"smtps://me%40example.com:Passw0rd@smtp.example.com:2465?timeout=10s", "smtp.example.com/me@example.com"},
		{"smtps://me%40gmail.com@smtp.gmail.com?auth=xoauth2", "smtp.gmail.com/me@gmail.com"},
		{"submission://relay.example.net", "relay.example.net/"},
	}
	for _, tt := range tests {
		got, err := fleet.Account(tt.url)
		if err != nil || got != tt.want {
			t.Errorf("Account(%s) = %q, %v; want %q", submit.RedactURL(tt.url), got, err, tt.want)
		}
		if strings.Contains(strings.ToLower(got), "passw0rd") {
			t.Errorf("Account(%s) = %q holds the password", submit.RedactURL(tt.url), got)
		}
	}
	if _, err := fleet.Account("smtps://me:Passw0rd@"); err == nil || strings.Contains(err.Error(), "Passw0rd") {
		t.Errorf("Account of a URL without a host: %v", err)
	}
}

// TestClassify checks every rule against the reply its source quotes, and
// the look-alikes that are not quota replies.
func TestClassify(t *testing.T) {
	tests := []struct {
		code      int
		enh, text string
		rule      string // "" for none
	}{
		{550, "5.4.5", "Daily user sending limit exceeded. For more information, visit https://support.google.com/mail/?p=DailyLimitExceeded - gsmtp", "gmail-daily"},
		{550, "5.4.5", "Daily sending quota exceeded. - gsmtp", "gmail-daily"},
		{550, "5.4.5", "Daily SMTP relay limit exceeded for user. For more information on SMTP relay sending limits please contact your administrator", "gmail-daily"},
		{550, "5.7.1", "Daily SMTP relay limit exceeded for customer", "workspace-relay-daily"},
		{450, "4.2.1", "Peak SMTP relay limit exceeded for customer. This is a temporary error.", "workspace-relay-peak"},
		{454, "", "Throttling failure: Maximum sending rate exceeded.", "ses-rate"},
		{454, "", "Throttling failure: Daily message quota exceeded.", "ses-daily"},
		{554, "5.2.0", "STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception", "m365-daily"},
		{421, "4.7.0", "Our system has detected an unusual rate of unsolicited mail originating from your IP address", "throttle-421"},
		{421, "4.7.28", "Too many messages, slow down", "throttle-421"},

		{450, "4.2.1", "The user you are trying to contact is receiving mail too quickly. Please resend your message at a later time.", ""},
		{550, "5.1.1", "The email account that you tried to reach does not exist", ""},
		{421, "4.7.0", "TLS required for RCPT domain, closing connection.", ""},
		{421, "4.3.0", "Temporary System Problem. Try again later", ""},
		{452, "4.5.3", "Your message has too many recipients.", ""},
		{451, "4.3.0", "Temporary failure, try again later", ""},
	}
	for _, tt := range tests {
		q, ok := fleet.Classify(&submit.Reply{Code: tt.code, Enhanced: tt.enh, Text: tt.text})
		if q.Rule != tt.rule || ok != (tt.rule != "") {
			t.Errorf("Classify(%d %s %s) = %q, %v; want %q", tt.code, tt.enh, tt.text, q.Rule, ok, tt.rule)
		}
		if ok && q.Pause <= 0 {
			t.Errorf("rule %s pauses %s", q.Rule, q.Pause)
		}
	}
	for _, r := range fleet.Rules {
		if !strings.HasPrefix(r.Source, "https://") {
			t.Errorf("rule %s cites no source", r.Name)
		}
	}
}

// database returns a pool on PORTWISE_RIVER_PG and a new schema in it,
// dropped at the end.
func database(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := os.Getenv("PORTWISE_RIVER_PG")
	if dsn == "" {
		t.Skip("PORTWISE_RIVER_PG is unset: set it to a PostgreSQL DSN (bash .ci/postgres.sh start prints one) to test the shared limits")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "portwise_test_" + hex.EncodeToString(b[:])
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
		pool.Close()
	})
	return pool, schema
}

// processes makes n Limits on one account, each with its own pool, as n
// processes would.
func processes(t *testing.T, n int, cfg fleet.Config) []*fleet.Limits {
	t.Helper()
	out := make([]*fleet.Limits, n)
	for i := range out {
		c := cfg
		c.Holder = "process-" + string(rune('A'+i))
		pool, err := pgxpool.New(context.Background(), os.Getenv("PORTWISE_RIVER_PG"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		c.Pool = pool
		l, err := fleet.New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		out[i] = l
	}
	return out
}

// TestSessionsCappedAcrossProcesses: three processes, each with eight
// goroutines connecting over and over through its Dialer, never hold more
// connections at once than the account's two slots.
func TestSessionsCappedAcrossProcesses(t *testing.T) {
	pool, schema := database(t)
	srv, err := conncount.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ls := processes(t, 3, fleet.Config{Pool: pool, Schema: schema, Account: "smtp.example.com/me", Sessions: 2, Lease: 2 * time.Second, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var busy, held atomic.Int64
	for _, l := range ls {
		d := l.Dialer(nil)
		for range 8 {
			wg.Go(func() {
				for range 5 {
					for {
						c, err := d.DialContext(ctx, "tcp", srv.Addr)
						var h *fleet.HoldError
						switch {
						case err == nil:
							time.Sleep(5 * time.Millisecond)
							c.Close()
						case errors.As(err, &h):
							held.Add(1)
							continue
						case ctx.Err() == nil:
							// This process holds a slot and it is busy:
							// Send would send again on it.
							busy.Add(1)
							time.Sleep(5 * time.Millisecond)
							continue
						default:
							t.Error(err)
						}
						break
					}
				}
			})
		}
	}
	wg.Wait()
	most, _ := srv.Max()
	if most != 2 || srv.Total() != 3*8*5 {
		t.Errorf("%d connections, at most %d at once; want %d, at most 2", srv.Total(), most, 3*8*5)
	}
	t.Logf("%d connections, at most %d at once; %d dials found their process's slots busy, %d held", srv.Total(), most, busy.Load(), held.Load())
}

// TestRateSpacesSendsAcrossProcesses: three processes sending as fast as
// they can under a shared 25 a second send 40 messages at 25 a second
// within 5%. (That their turns never come closer than the spacing is
// TestTurnsNeverOverlap's, exactly; the sends themselves can be late by
// the scheduler's whim.)
func TestRateSpacesSendsAcrossProcesses(t *testing.T) {
	pool, schema := database(t)
	const rate, n = 25, 40
	ls := processes(t, 3, fleet.Config{Pool: pool, Schema: schema, Account: "smtp.example.com/me", Rate: rate, MaxWait: 5 * time.Second})
	var (
		mu    sync.Mutex
		times []time.Time
		left  atomic.Int64
		wg    sync.WaitGroup
	)
	send := func(context.Context) (*submit.SendResult, error) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		return &submit.SendResult{}, nil
	}
	// A first send each, unmeasured: the processes' pools connect.
	for _, l := range ls {
		if _, err := l.Send(context.Background(), func(context.Context) (*submit.SendResult, error) { return &submit.SendResult{}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	left.Store(n)
	for _, l := range ls {
		for range 4 {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if _, err := l.Send(context.Background(), send); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	// The rate is the fitted slope of the sends over time, which every
	// send weighs on: from the first and the last alone, one send made
	// late by the scheduler (130ms under the race detector beside other
	// tests) moves a run this short by 8% with no turn lost. A turn lost
	// still shows: every later send is one turn later.
	got := fittedRate(times)
	if got > rate*1.05 || got < rate*0.95 {
		t.Errorf("%d sends at %.1f a second (%.1f from the first to the last), want %d within 5%%", n, got, float64(n-1)/times[n-1].Sub(times[0]).Seconds(), rate)
	}
	t.Logf("%d sends from 3 processes at %.2f a second (limit %d)", n, got, rate)
}

// TestRateHoldsASendWhoseTurnIsTooFar: at one send a second, the send
// after one that just went has its turn a second away, past MaxWait: it is
// held, in either process, and not called.
func TestRateHoldsASendWhoseTurnIsTooFar(t *testing.T) {
	pool, schema := database(t)
	ls := processes(t, 2, fleet.Config{Pool: pool, Schema: schema, Account: "smtp.example.com/me", Rate: 1, MaxWait: 500 * time.Millisecond})
	called := 0
	send := func(context.Context) (*submit.SendResult, error) { called++; return &submit.SendResult{}, nil }
	if _, err := ls[0].Send(context.Background(), send); err != nil || called != 1 {
		t.Fatalf("the first send: %v, called %d times", err, called)
	}
	for _, l := range ls {
		_, err := l.Send(context.Background(), send)
		var h *fleet.HoldError
		if !errors.As(err, &h) || h.Cause != fleet.HoldRate || h.Wait <= 0 {
			t.Errorf("the next send: %v, want held for want of a turn", err)
		}
		t.Log(err)
	}
	if called != 1 {
		t.Errorf("held sends were called: %d sends in all", called)
	}
}

// TestQuotaReplyPausesEveryProcess: one process's send gets Gmail's daily
// limit; every process's sends are held, without being called, until the
// pause ends; then they go.
func TestQuotaReplyPausesEveryProcess(t *testing.T) {
	pool, schema := database(t)
	const pause = time.Second
	ls := processes(t, 2, fleet.Config{Pool: pool, Schema: schema, Account: "smtp.gmail.com/me@gmail.com", MaxPause: pause})
	quota := &submit.Reply{Code: 550, Enhanced: "5.4.5", Text: "Daily user sending limit exceeded."}
	t0 := time.Now()
	_, err := ls[0].Send(context.Background(), func(context.Context) (*submit.SendResult, error) { return &submit.SendResult{}, quota })
	var h *fleet.HoldError
	if !errors.As(err, &h) || h.Cause != fleet.HoldPaused || !errors.Is(err, quota) || h.Wait > pause || h.Wait < pause/2 {
		t.Fatalf("the quota reply gave %v, want a pause of %s wrapping the reply", err, pause)
	}
	if !strings.Contains(h.Reason, "gmail-daily: 550 5.4.5 Daily user sending limit exceeded.") {
		t.Errorf("reason %q", h.Reason)
	}
	sts, err := fleet.ReadStatus(context.Background(), pool, schema)
	if err != nil || len(sts) != 1 || !sts[0].Active() || sts[0].Pause.Holder != "process-A" {
		t.Fatalf("status during the pause: %+v, %v", sts, err)
	}
	t.Logf("status:\n%s", sts[0])
	called := 0
	send := func(context.Context) (*submit.SendResult, error) { called++; return &submit.SendResult{}, nil }
	for {
		_, err := ls[1].Send(context.Background(), send)
		if err == nil {
			break
		}
		if !errors.As(err, &h) || h.Cause != fleet.HoldPaused {
			t.Fatalf("during the pause: %v", err)
		}
		time.Sleep(h.Wait)
	}
	if d := time.Since(t0); called != 1 || d < pause*9/10 {
		t.Errorf("the other process sent after %s (called %d times), want once after the %s pause", d, called, pause)
	}
	sts, _ = fleet.ReadStatus(context.Background(), pool, schema)
	if len(sts) != 1 || sts[0].Active() || sts[0].Pause == nil {
		t.Errorf("status after the pause: %+v", sts)
	}
}

// TestIdleSessionHandedOver: process A holds the account's only slot. While
// its connection sits idle, a process B waiting for a slot gets it within
// about HandOff; while A's connection waits for the server's reply (a read
// in progress, as after the end of a message), B never does.
func TestIdleSessionHandedOver(t *testing.T) {
	pool, schema := database(t)
	srv, err := conncount.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	const handOff = 300 * time.Millisecond
	ls := processes(t, 2, fleet.Config{Pool: pool, Schema: schema, Account: "smtp.example.com/me", Sessions: 1,
		Lease: 5 * time.Second, HandOff: handOff, MaxWait: 2 * time.Second, PollInterval: 20 * time.Millisecond})
	ctx := context.Background()

	t.Run("idle", func(t *testing.T) {
		a, err := ls[0].Dialer(nil).DialContext(ctx, "tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		t0 := time.Now()
		b, err := ls[1].Dialer(nil).DialContext(ctx, "tcp", srv.Addr)
		if err != nil {
			t.Fatalf("the waiting process got no slot: %v", err)
		}
		b.Close()
		if d := time.Since(t0); d < handOff || d > handOff+time.Second {
			t.Errorf("slot handed over after %s, want about %s", d, handOff)
		}
		if _, err := a.Write([]byte("x")); err == nil {
			t.Error("the handed-over connection still writes")
		}
		t.Logf("an idle slot handed over after %s", time.Since(t0).Round(time.Millisecond))
	})
	t.Run("waiting for a reply", func(t *testing.T) {
		a, err := ls[0].Dialer(nil).DialContext(ctx, "tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		go a.Read(make([]byte, 1)) // the server never answers
		_, err = ls[1].Dialer(nil).DialContext(ctx, "tcp", srv.Addr)
		var h *fleet.HoldError
		if !errors.As(err, &h) || h.Cause != fleet.HoldSessions {
			t.Fatalf("the waiting process: %v, want held for want of a slot", err)
		}
		if most, _ := srv.Max(); most != 1 {
			t.Errorf("%d sessions at once, cap 1", most)
		}
	})
}

// TestMailerLimitsStillApply: under shared limits looser than the Mailer's
// own (3 sessions, 100 a second for the account; MaxConns 1 and RateLimit
// 10 a second for this process's Mailer), the server sees the Mailer's:
// one session, 10 messages a second.
func TestMailerLimitsStillApply(t *testing.T) {
	pool, schema := database(t)
	srv := submittest.NewServer(t)
	proxy, err := conncount.Listen(srv.Addr(srv.Implicit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	_, port, _ := net.SplitHostPort(proxy.Addr)
	p, _ := strconv.Atoi(port)
	ls := processes(t, 1, fleet.Config{Pool: pool, Schema: schema, Account: "127.0.0.1/user", Sessions: 3, Rate: 100})
	d := srv.Dialer(submit.PasswordAuth("user", "pass"), tlsmode.Candidate{Port: p, Mode: tlsmode.Implicit})
	d.NetDialer = ls[0].Dialer(nil)
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1", MaxConns: 1, RateLimit: 10, MaxTries: -1}
	defer m.Close()
	const n = 15
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Go(func() {
			msg := fmt.Sprintf("Subject: %d\r\nMessage-ID: <%d@example.com>\r\n\r\nHello.\r\n", i, i)
			_, err := ls[0].Send(context.Background(), func(ctx context.Context) (*submit.SendResult, error) {
				return m.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(msg), nil)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if most, _ := proxy.Max(); most != 1 {
		t.Errorf("%d sessions at once, the Mailer's MaxConns is 1", most)
	}
	if got := len(srv.Messages()); got != n {
		t.Fatalf("%d messages, want %d", got, n)
	}
	// The Mailer's limiter lets the first send go at once, then one every
	// 100ms.
	took := time.Since(t0)
	if took < (n-1)*100*time.Millisecond*95/100 {
		t.Errorf("%d messages in %s: faster than the Mailer's 10 a second", n, took)
	}
	t.Logf("%d messages in %s through one session, under shared limits of 3 sessions and 100 a second", n, took.Round(time.Millisecond))
}

// fittedRate is the least-squares slope of sends against time, in sends a
// second.
func fittedRate(ts []time.Time) float64 {
	n := float64(len(ts))
	var sx, sy, sxx, sxy float64
	for i, t := range ts {
		x, y := t.Sub(ts[0]).Seconds(), float64(i)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}
