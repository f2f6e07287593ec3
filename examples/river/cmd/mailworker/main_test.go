package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/portwise/portwise/examples/river/mailjob"
	"github.com/portwise/portwise/submit/submittest"
)

// TestWorkerProcessesShareOneQueue builds mailworker, starts worker
// processes on one queue, enqueues messages with "mailworker enqueue" to a
// server that refuses every 7th MAIL FROM with a 451, and checks that every
// message is delivered exactly once, every job completed, and, with
// several processes, that each of them sent some. PostgreSQL runs with
// PORTWISE_RIVER_PG set to a DSN (CI sets it: .ci/postgres.sh); SQLite,
// with one process as a SQLite file takes, always runs.
func TestWorkerProcessesShareOneQueue(t *testing.T) {
	bin := buildWorker(t)
	tests := []struct {
		name     string
		procs, n int
		db       func(t *testing.T) (dsn, schema string)
	}{
		{"sqlite, one process", 1, 30, func(t *testing.T) (string, string) {
			return "sqlite:" + filepath.Join(t.TempDir(), "queue.db"), ""
		}},
		{"postgres, two processes", 2, 60, postgres},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn, schema := tt.db(t)
			const every = 7
			srv := submittest.NewServer(t, submittest.Options{FailEvery: every})
			ca := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(ca, srv.CACertPEM(), 0o600); err != nil {
				t.Fatal(err)
			}
			// The URL, password included, goes in the environment, not
			// in the process list.
			env := append(os.Environ(), "SMTP_URL=smtps://user:pass@127.0.0.1:"+strconv.Itoa(srv.Implicit.Port))
			dbArgs := []string{"-db", dsn, "-schema", schema}

			workers := make([]*process, tt.procs)
			for i := range workers {
				workers[i] = start(t, bin, env, append([]string{"work", "-ca", ca, "-workers", "4", "-conns", "2", "-retry-delay", "100ms", "-v"}, dbArgs...)...)
			}
			for _, w := range workers {
				w.waitFor(t, "mailworker: working")
			}

			out, err := exec.Command(bin, append([]string{"enqueue", "-n", strconv.Itoa(tt.n), "-from", "app@example.com", "-to", "bob@example.com"}, dbArgs...)...).Output()
			if err != nil {
				t.Fatalf("enqueue: %v\n%s", err, exitStderr(err))
			}
			enqueued := map[string]bool{}
			for line := range strings.Lines(string(out)) {
				if f := strings.Fields(line); len(f) == 3 && f[0] == "job" {
					enqueued[f[2]] = true
				}
			}
			if len(enqueued) != tt.n {
				t.Fatalf("enqueue printed %d Message-IDs, want %d:\n%s", len(enqueued), tt.n, out)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if _, err := srv.WaitMessages(ctx, tt.n); err != nil {
				t.Fatal(err)
			}
			jobs := waitCompleted(t, ctx, dsn, schema, tt.n)

			delivered := map[string]int{}
			for _, m := range srv.Messages() {
				msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
				if err != nil {
					t.Fatalf("message %q: %v", m.Data, err)
				}
				delivered[msg.Header.Get("Message-Id")]++
			}
			for id := range enqueued {
				if delivered[id] != 1 {
					t.Errorf("%s delivered %d times, want 1", id, delivered[id])
				}
			}
			if len(delivered) != tt.n {
				t.Errorf("%d distinct messages delivered, want %d", len(delivered), tt.n)
			}

			retries, byProc := 0, map[string]int{}
			for _, j := range jobs {
				retries += j.Attempt - 1
				if len(j.AttemptedBy) > 0 {
					byProc[j.AttemptedBy[len(j.AttemptedBy)-1]]++
				}
			}
			refusals := 0
			for _, c := range srv.Conns() {
				for _, cmd := range c.Commands {
					if strings.HasPrefix(cmd, "MAIL FROM:") {
						refusals++
					}
				}
			}
			refusals /= every
			// Each 451 is a retry, by River, or by the Mailer where it
			// retries itself: never more River retries than refusals.
			if refusals == 0 || retries > refusals {
				t.Errorf("%d River retries for %d refusals (451) by the server", retries, refusals)
			}
			if len(byProc) != tt.procs {
				t.Errorf("jobs completed by %d processes (%v), want %d", len(byProc), byProc, tt.procs)
			}
			t.Logf("%d messages, each delivered once; %d refused with 451, %d River retries; completed per process: %v", tt.n, refusals, retries, byProc)

			for _, w := range workers {
				w.stop(t)
			}
		})
	}
}

// postgres returns PORTWISE_RIVER_PG and a new schema in it, dropped at
// the end, so that runs never see each other's jobs.
func postgres(t *testing.T) (string, string) {
	dsn := os.Getenv("PORTWISE_RIVER_PG")
	if dsn == "" {
		t.Skip("PORTWISE_RIVER_PG is unset: set it to a PostgreSQL DSN (bash .ci/postgres.sh start prints one) to run worker processes on one PostgreSQL queue")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "portwise_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
		conn.Close(ctx)
	})
	return dsn, schema
}

// waitCompleted waits until the queue holds n completed jobs and returns
// them; a job cancelled or discarded fails the test at once.
func waitCompleted(t *testing.T, ctx context.Context, dsn, schema string, n int) []*rivertype.JobRow {
	t.Helper()
	q, err := mailjob.Open(ctx, dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c, err := q.NewClient(&river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		res, err := c.JobList(ctx, river.NewJobListParams().First(10_000))
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, j := range res.Jobs {
			switch j.State {
			case rivertype.JobStateCompleted:
				done++
			case rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
				t.Fatalf("job %d %s: %v", j.ID, j.State, j.Errors)
			}
		}
		if len(res.Jobs) == n && done == n {
			return res.Jobs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d jobs, %d completed, want %d completed: %v", len(res.Jobs), done, n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// The binary buildWorker made, once for every test of the run, in a
// directory TestMain removes.
var (
	built    sync.Once
	builtDir string
	builtBin string
	builtErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// buildWorker builds mailworker, with the race detector when the test has
// it (the packages are in the build cache already, so this only links),
// once for all the tests.
func buildWorker(t *testing.T) string {
	t.Helper()
	built.Do(func() {
		if builtDir, builtErr = os.MkdirTemp("", "mailworker-test"); builtErr != nil {
			return
		}
		builtBin = filepath.Join(builtDir, "mailworker")
		args := []string{"build", "-o", builtBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
			builtErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return builtBin
}

// process is a worker process whose stderr the test reads as it runs.
type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// start starts bin; the process is killed at the end of the test if it
// still runs, and its output logged when the test failed.
func start(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("worker %d:\n%s", p.cmd.Process.Pid, p.output())
		}
	})
	return p
}

// waitFor waits until the process has written s to stderr.
func (p *process) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for !strings.Contains(p.output(), s) {
		select {
		case err := <-p.done:
			t.Fatalf("worker exited (%v) before writing %q:\n%s", err, s, p.output())
		case <-deadline:
			t.Fatalf("worker did not write %q within a minute:\n%s", s, p.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and expects a clean exit, and the worker to have
// logged each of its attempts.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Errorf("worker %d exited with %v after SIGTERM", p.cmd.Process.Pid, err)
		}
	case <-time.After(45 * time.Second):
		t.Errorf("worker %d still runs 45s after SIGTERM", p.cmd.Process.Pid)
		return
	}
	attempts := 0
	sc := bufio.NewScanner(strings.NewReader(p.output()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), `msg="portwise mail job"`) {
			attempts++
		}
	}
	if !strings.Contains(p.output(), "mailworker: stopped") || attempts == 0 {
		t.Errorf("worker %d: %d attempts logged, stopped %v", p.cmd.Process.Pid, attempts, strings.Contains(p.output(), "mailworker: stopped"))
	}
}

func exitStderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
