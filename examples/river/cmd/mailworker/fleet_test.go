package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/portwise/portwise/examples/river/internal/conncount"
	"github.com/portwise/portwise/examples/river/mailjob"
	"github.com/portwise/portwise/submit/submittest"
)

// The fleet tests' limits: short, so that a run takes seconds.
const (
	fleetCap   = 2
	fleetRate  = 20 // a second
	fleetLease = 2 * time.Second
	smtpPass   = "smtp-Passw0rd"
)

// fleetRun is a run of worker processes on one PostgreSQL queue, sending as
// one account to a submittest server behind a proxy that counts the
// sessions open at once and a watcher that timestamps each message.
type fleetRun struct {
	t           *testing.T
	bin         string
	dsn, schema string
	srv         *submittest.Server
	proxy       *conncount.Proxy
	env         []string
	ca          string
	pool        *pgxpool.Pool

	mu      sync.Mutex
	arrived []time.Time // when the server had each message, in order
}

func newFleet(t *testing.T, opts submittest.Options) *fleetRun {
	t.Helper()
	dsn, schema := postgres(t) // skips without PORTWISE_RIVER_PG
	f := &fleetRun{t: t, bin: buildWorker(t), dsn: dsn, schema: schema}
	opts.Accounts = map[string]string{"user": smtpPass}
	f.srv = submittest.NewServer(t, opts)
	var err error
	if f.proxy, err = conncount.Listen(f.srv.Addr(f.srv.Implicit)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.proxy.Close)
	f.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.ca, f.srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	f.env = append(os.Environ(), "SMTP_URL=smtps://user:"+smtpPass+"@"+f.proxy.Addr)
	if f.pool, err = pgxpool.New(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.pool.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for i := 1; ; i++ {
			if _, err := f.srv.WaitMessages(ctx, i); err != nil {
				return
			}
			f.mu.Lock()
			f.arrived = append(f.arrived, time.Now())
			f.mu.Unlock()
		}
	}()
	return f
}

// start starts n workers with the shared limits and extra flags, and waits
// until they work.
func (f *fleetRun) start(n int, extra ...string) []*process {
	f.t.Helper()
	args := append([]string{"work", "-ca", f.ca, "-workers", "4", "-conns", strconv.Itoa(fleetCap),
		"-shared-sessions", strconv.Itoa(fleetCap), "-shared-rate", strconv.Itoa(fleetRate) + "/1s",
		"-lease", fleetLease.String(), "-max-wait", "1s", "-retry-delay", "100ms", "-v",
		"-db", f.dsn, "-schema", f.schema}, extra...)
	ws := make([]*process, n)
	for i := range ws {
		ws[i] = start(f.t, f.bin, f.env, args...)
	}
	for _, w := range ws {
		w.waitFor(f.t, "mailworker: working")
	}
	return ws
}

// enqueue enqueues n messages and returns their Message-IDs.
func (f *fleetRun) enqueue(n int) []string {
	f.t.Helper()
	out, err := exec.Command(f.bin, "enqueue", "-n", strconv.Itoa(n), "-from", "app@example.com", "-to", "bob@example.com",
		"-db", f.dsn, "-schema", f.schema).Output()
	if err != nil {
		f.t.Fatalf("enqueue: %v\n%s", err, exitStderr(err))
	}
	var ids []string
	for line := range strings.Lines(string(out)) {
		if fs := strings.Fields(line); len(fs) == 3 && fs[0] == "job" {
			ids = append(ids, fs[2])
		}
	}
	if len(ids) != n {
		f.t.Fatalf("enqueue printed %d Message-IDs, want %d", len(ids), n)
	}
	return ids
}

// jobs lists the queue's jobs.
func (f *fleetRun) jobs() []*rivertype.JobRow {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT id, state, attempt, attempted_by, metadata, errors FROM `+
		pgx.Identifier{f.schema, "river_job"}.Sanitize()+` ORDER BY id`)
	if err != nil {
		f.t.Fatal(err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*rivertype.JobRow, error) {
		var (
			j     rivertype.JobRow
			state string
			errs  [][]byte
		)
		if err := r.Scan(&j.ID, &state, &j.Attempt, &j.AttemptedBy, &j.Metadata, &errs); err != nil {
			return nil, err
		}
		j.State = rivertype.JobState(state)
		for _, e := range errs {
			var ae rivertype.AttemptError
			json.Unmarshal(e, &ae)
			j.Errors = append(j.Errors, ae)
		}
		return &j, nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return jobs
}

// waitJobs waits until done(jobs) or the deadline.
func (f *fleetRun) waitJobs(d time.Duration, done func([]*rivertype.JobRow) bool) []*rivertype.JobRow {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		jobs := f.jobs()
		if done(jobs) {
			return jobs
		}
		if time.Now().After(deadline) {
			states := map[rivertype.JobState]int{}
			for _, j := range jobs {
				states[j.State]++
			}
			f.t.Fatalf("jobs after %s: %v", d, states)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func allCompleted(n int) func([]*rivertype.JobRow) bool {
	return func(jobs []*rivertype.JobRow) bool {
		done := 0
		for _, j := range jobs {
			if j.State == rivertype.JobStateCompleted {
				done++
			}
		}
		return len(jobs) == n && done == n
	}
}

// deliveries counts the server's messages by Message-ID.
func (f *fleetRun) deliveries() map[string]int {
	f.t.Helper()
	n := map[string]int{}
	for _, m := range f.srv.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			f.t.Fatal(err)
		}
		n[msg.Header.Get("Message-Id")]++
	}
	return n
}

func (f *fleetRun) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.arrived)
}

// mailFroms counts the MAIL FROM commands the server received.
func (f *fleetRun) mailFroms() int {
	n := 0
	for _, c := range f.srv.Conns() {
		for _, cmd := range c.Commands {
			if strings.HasPrefix(cmd, "MAIL FROM:") {
				n++
			}
		}
	}
	return n
}

// dbNow is the database's clock, which the leases are on.
func (f *fleetRun) dbNow() time.Time {
	var now time.Time
	if err := f.pool.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&now); err != nil {
		f.t.Fatal(err)
	}
	return now
}

// leases returns the live leases: holder by slot, with expiry and when
// taken.
type leaseRow struct {
	slot              int
	holder            string
	acquired, expires time.Time
}

func (f *fleetRun) leases() []leaseRow {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT slot, holder, acquired_at, expires_at FROM `+
		pgx.Identifier{f.schema, "portwise_fleet_lease"}.Sanitize()+` WHERE expires_at > clock_timestamp() ORDER BY slot`)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (leaseRow, error) {
		var l leaseRow
		err := r.Scan(&l.slot, &l.holder, &l.acquired, &l.expires)
		return l, err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// noSecrets checks that no worker wrote a password.
func (f *fleetRun) noSecrets(ws []*process) {
	f.t.Helper()
	pgPass := ""
	if i := strings.Index(f.dsn, "://"); i >= 0 {
		if at := strings.LastIndex(f.dsn, "@"); at > i {
			_, pgPass, _ = strings.Cut(f.dsn[i+3:at], ":")
		}
	}
	for _, w := range ws {
		out := w.output()
		if strings.Contains(out, smtpPass) || pgPass != "" && strings.Contains(out, pgPass) {
			f.t.Errorf("worker %d wrote a password:\n%s", w.cmd.Process.Pid, out)
		}
	}
}

func workerID(w *process) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("mailworker_%.60s_%d", host, w.cmd.Process.Pid)
}

// rate is messages a second from the first to the last of ts.
func rate(ts []time.Time) float64 {
	return float64(len(ts)-1) / ts[len(ts)-1].Sub(ts[0]).Seconds()
}

// TestFleetKeepsSharedLimits runs three worker processes, each allowed
// as many connections as the whole account (-conns 2), on one queue with
// the account capped at 2 sessions and 20 messages a second, and checks at
// the server: never more than 2 sessions open at once, 20 a second within
// 5% while the queue holds work, no two seconds more than 10% above it,
// and each message delivered once.
func TestFleetKeepsSharedLimits(t *testing.T) {
	f := newFleet(t, submittest.Options{})
	// Six jobs each, so that turns are always taken 600ms ahead: a worker
	// returning late on a loaded machine then delays a send, never leaves
	// a turn untaken.
	ws := f.start(3, "-workers", "6")
	const n = 150
	ids := f.enqueue(n)
	t0 := time.Now()
	jobs := f.waitJobs(time.Minute, allCompleted(n))
	took := time.Since(t0)

	most, _ := f.proxy.Max()
	if most > fleetCap {
		t.Errorf("%d sessions open at once at the server, cap %d", most, fleetCap)
	}
	got := f.deliveries()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, got[id])
		}
	}
	ts := f.times()
	if len(ts) != n {
		t.Fatalf("%d messages timestamped, want %d", len(ts), n)
	}
	// While the queue still holds work: the last jobs may sit with a
	// worker that holds no session, waiting out -max-wait.
	steady := ts[:n-12]
	r := rate(steady)
	if r > fleetRate*1.05 || r < fleetRate*0.95 {
		var gaps []string
		for i := 1; i < len(steady); i++ {
			if d := steady[i].Sub(steady[i-1]); d > 2*time.Second/fleetRate {
				gaps = append(gaps, fmt.Sprintf("%d:%s", i, d.Round(time.Millisecond)))
			}
		}
		t.Errorf("%.2f messages a second over the first %d, want %d within 5%%; gaps over two turns: %v", r, len(steady), fleetRate, gaps)
	}
	// Two seconds' worth: a send made late by its worker's scheduling
	// (tens of milliseconds, over a hundred under the race detector on a
	// loaded machine) bunches with the next, which a provider's window of
	// seconds or minutes does not see; a rate above the limit it does.
	const window = 2 * fleetRate
	densest, at := time.Hour, 0
	for i := window; i < n; i++ {
		if d := ts[i].Sub(ts[i-window]); d < densest {
			densest, at = d, i-window
		}
	}
	if densest < 2*time.Second*9/10 {
		var gaps []time.Duration
		for i := max(at-3, 1); i <= min(at+window+3, n-1); i++ {
			gaps = append(gaps, ts[i].Sub(ts[i-1]).Round(time.Millisecond))
		}
		t.Errorf("%d messages within %s, from message %d; the gaps around: %v", window+1, densest, at, gaps)
	}
	byProc := map[string]int{}
	retried := 0
	for _, j := range jobs {
		byProc[j.AttemptedBy[len(j.AttemptedBy)-1]]++
		retried += j.Attempt - 1
	}
	for _, w := range ws {
		w.stop(t)
	}
	f.noSecrets(ws)
	t.Logf("%d messages in %s, each delivered once; at most %d sessions open at once (cap %d), %d connections in all; "+
		"%.2f a second over the first %d (limit %d), %.2f over all %d; the densest two seconds held %d messages in %s; %d River retries; sent per process: %v",
		n, took.Round(10*time.Millisecond), most, fleetCap, f.proxy.Total(), r, len(steady), fleetRate, rate(ts), n, window+1, densest.Round(time.Millisecond), retried, byProc)
}

// TestFleetSlotsComeBackAfterSIGKILL kills, mid-run, a worker that holds
// session slots, and checks that they come back within the lease time
// (the other workers take them), that the cap held throughout, and that
// no message was delivered twice: every message is delivered once, but
// for those whose jobs the killed worker left "running", delivered at most
// once. These are the jobs it was working and those whose outcome River's
// completer had not written yet (it writes in batches): River rescues them
// after RescueStuckJobsAfter (an hour), and one that was delivered is then
// sent again, the window no queue closes (README).
func TestFleetSlotsComeBackAfterSIGKILL(t *testing.T) {
	f := newFleet(t, submittest.Options{})
	ws := f.start(3)
	const n = 120
	ids := f.enqueue(n)

	// Kill a worker once it holds a slot and the run is well under way.
	var victim *process
	var slots []leaseRow
	deadline := time.Now().Add(30 * time.Second)
	for victim == nil {
		if time.Now().After(deadline) {
			t.Fatal("no worker held a slot")
		}
		time.Sleep(50 * time.Millisecond)
		if len(f.times()) < 20 {
			continue
		}
		for _, l := range f.leases() {
			for _, w := range ws {
				if l.holder == workerID(w) && victim == nil {
					victim = w
				}
			}
		}
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	victim.done <- nil // for the cleanup
	killed := f.dbNow()
	for _, l := range f.leases() {
		if l.holder == workerID(victim) {
			slots = append(slots, l)
		}
	}
	if len(slots) == 0 {
		t.Fatal("the killed worker held no slot when it died")
	}

	// Each of its slots comes back: no longer its, and taken by another
	// worker as the queue still holds work.
	back := map[int]time.Duration{}
	retaken := map[int]time.Duration{}
	for len(retaken) < len(slots) && time.Since(killed) < 4*fleetLease {
		now := f.dbNow()
		live := f.leases()
		for _, s := range slots {
			mine := slices.ContainsFunc(live, func(l leaseRow) bool { return l.slot == s.slot && l.holder == s.holder })
			if _, ok := back[s.slot]; !ok && !mine {
				back[s.slot] = now.Sub(killed)
			}
			if i := slices.IndexFunc(live, func(l leaseRow) bool { return l.slot == s.slot && l.holder != s.holder }); i >= 0 {
				if _, ok := retaken[s.slot]; !ok {
					retaken[s.slot] = live[i].acquired.Sub(killed)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range slots {
		b, ok := back[s.slot]
		if !ok || b > fleetLease+250*time.Millisecond {
			t.Errorf("slot %d came back %s after the kill (ok %v), want within the lease, %s", s.slot, b, ok, fleetLease)
		}
		if r, ok := retaken[s.slot]; !ok || r > fleetLease+time.Second {
			t.Errorf("slot %d taken again %s after the kill (ok %v), want soon after its lease expired", s.slot, r, ok)
		}
	}

	// Every job but those the killed worker was running completes.
	isVictims := func(j *rivertype.JobRow) bool {
		return j.State == rivertype.JobStateRunning && j.AttemptedBy[len(j.AttemptedBy)-1] == workerID(victim)
	}
	jobs := f.waitJobs(time.Minute, func(jobs []*rivertype.JobRow) bool {
		done, stuck := 0, 0
		for _, j := range jobs {
			switch {
			case j.State == rivertype.JobStateCompleted:
				done++
			case isVictims(j):
				stuck++
			}
		}
		return done+stuck == n
	})
	got := f.deliveries()
	stuck := map[string]bool{}
	for _, j := range jobs {
		if isVictims(j) {
			stuck[argsID(t, f, j.ID)] = true
		}
	}
	twice := 0
	for _, id := range ids {
		switch {
		case got[id] > 1:
			twice++
			t.Errorf("%s delivered %d times", id, got[id])
		case got[id] == 0 && !stuck[id]:
			t.Errorf("%s never delivered, and its job is not the killed worker's", id)
		}
	}
	most, _ := f.proxy.Max()
	if most > fleetCap {
		t.Errorf("%d sessions open at once at the server, cap %d", most, fleetCap)
	}
	for _, w := range ws {
		if w != victim {
			w.stop(t)
		}
	}
	t.Logf("killed a worker holding slots %v (lease %s, renewed every %s): back after %v, taken by another worker after %v; "+
		"at most %d sessions open at once (cap %d); %d jobs left running by the killed worker (delivered: %d), every other message delivered once",
		slotNumbers(slots), fleetLease, (fleetLease / 3).Round(time.Millisecond), round(back), round(retaken), most, fleetCap, len(stuck), countDelivered(got, stuck))
}

// TestFleetPausesOnQuotaReply runs three workers against a server that
// answers every 16th MAIL FROM with Gmail's daily limit: each time, the
// whole fleet pauses (no MAIL FROM reaches the server during the pause),
// no job fails or uses an attempt, the pause and its reason show in
// mailworker status and in the held job's metadata, and sending resumes by
// itself after it.
func TestFleetPausesOnQuotaReply(t *testing.T) {
	const (
		every = 16
		pause = 2 * time.Second
		n     = 40
	)
	f := newFleet(t, submittest.Options{FailEvery: every,
		FailReply: "550 5.4.5 Daily user sending limit exceeded. For more information, visit https://support.google.com/mail/?p=DailyLimitExceeded - gsmtp"})
	ws := f.start(3, "-max-pause", pause.String())
	ids := f.enqueue(n)

	// During the first pause, mailworker status shows it.
	var statusOut string
	deadline := time.Now().Add(30 * time.Second)
	for statusOut == "" {
		if time.Now().After(deadline) {
			t.Fatal("no pause within 30s")
		}
		out, err := exec.Command(f.bin, "status", "-db", f.dsn, "-schema", f.schema).CombinedOutput()
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "PAUSED") {
			statusOut = string(out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"account 127.0.0.1/user", "gmail-daily: 550 5.4.5 Daily user sending limit exceeded", "until"} {
		if !strings.Contains(statusOut, want) {
			t.Errorf("status lacks %q:\n%s", want, statusOut)
		}
	}
	jobs := f.waitJobs(time.Minute, allCompleted(n))

	got := f.deliveries()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, got[id])
		}
	}
	snoozed, held := 0, 0
	for _, j := range jobs {
		if j.Attempt != 1 || len(j.Errors) != 0 {
			t.Errorf("job %d: %d attempts, errors %v; want one attempt, no error", j.ID, j.Attempt, j.Errors)
		}
		var md struct {
			Snoozes int           `json:"snoozes"`
			Hold    *mailjob.Hold `json:"portwise_hold"`
		}
		json.Unmarshal(j.Metadata, &md)
		if md.Snoozes > 0 {
			snoozed++
		}
		if md.Hold != nil && md.Hold.Cause == "paused" {
			held++
			if !strings.Contains(md.Hold.Reason, "550 5.4.5") || md.Hold.Until.IsZero() {
				t.Errorf("job %d's hold: %+v", j.ID, md.Hold)
			}
		}
	}
	refused := f.mailFroms() - n
	if refused != f.mailFroms()/every || refused < 2 {
		t.Errorf("%d MAIL FROMs for %d messages: %d refused, want one refusal every %d (no send during a pause)", f.mailFroms(), n, refused, every)
	}
	if held < refused {
		t.Errorf("%d jobs record the pause in their metadata, want at least the %d that got the reply", held, refused)
	}
	// Each refusal is a gap of at least the pause in the server's
	// messages.
	ts := f.times()
	var gaps []time.Duration
	for i := 1; i < len(ts); i++ {
		if d := ts[i].Sub(ts[i-1]); d >= pause*9/10 {
			gaps = append(gaps, d)
		}
	}
	if len(gaps) != refused {
		t.Errorf("%d gaps of about the pause (%s) in the messages, want %d: %v", len(gaps), pause, refused, gaps)
	}
	for _, w := range ws {
		w.stop(t)
	}
	f.noSecrets(ws)
	t.Logf("%d messages, each delivered once; %d quota replies (one per %d MAIL FROMs, none during a pause); the fleet stopped for %v (pause %s); "+
		"%d jobs snoozed, %d hold the pause in their metadata, none failed or used an attempt; mailworker status during the pause:\n%s",
		n, refused, every, roundAll(gaps), pause, snoozed, held, statusOut)
}

func argsID(t *testing.T, f *fleetRun, id int64) string {
	var raw []byte
	if err := f.pool.QueryRow(context.Background(), `SELECT args FROM `+pgx.Identifier{f.schema, "river_job"}.Sanitize()+` WHERE id = $1`, id).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var a mailjob.Args
	json.Unmarshal(raw, &a)
	return a.MessageID
}

func slotNumbers(ls []leaseRow) []int {
	var out []int
	for _, l := range ls {
		out = append(out, l.slot)
	}
	return out
}

func countDelivered(got map[string]int, ids map[string]bool) int {
	n := 0
	for id := range ids {
		n += got[id]
	}
	return n
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

func round[K comparable](m map[K]time.Duration) map[K]time.Duration {
	out := map[K]time.Duration{}
	for k, d := range m {
		out[k] = d.Round(10 * time.Millisecond)
	}
	return out
}
