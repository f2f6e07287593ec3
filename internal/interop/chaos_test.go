package interop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/chaos"
	"github.com/portwise/portwise/internal/maildir"
	"github.com/portwise/portwise/internal/netem"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// chaosPostfixSeeds are the chaos test's runs against Postfix: seed 0 on
// the STARTTLS port, seed 5 on the implicit TLS one with Close during the
// sends (the scenario's credential revocation is the fault server's alone).
var chaosPostfixSeeds = []uint64{0, 5}

// TestInteropChaosPostfix runs the fault-injection test of internal/chaos
// against the real Postfix: the Mailer sends through the chaos proxy,
// which resets, half-closes and stalls connections at byte offsets and
// around the replies to messages (found from the TLS records: the first
// record Postfix sends after a message's upload), and every message's
// copies are counted in the recipient's maildir by Message-ID. The same
// invariants hold: nil means one copy, ErrOutcomeUnknown at most one, any
// other error none, never two, every Send back by its deadline, no socket
// or goroutine left. Postfix refuses nothing of its own accord, so the
// server-side faults and the MAIL-after-body record are the fault server's
// alone.
func TestInteropChaosPostfix(t *testing.T) {
	m := realMTA(t)
	dir := filepath.Join(m.maildir, mailbox(m.user2))
	for _, seed := range chaosPostfixSeeds {
		rep, err := chaos.Run(chaos.Config{
			Seed:     seed,
			Messages: 100,
			External: &chaos.External{
				StartTLS: m.starttls,
				Implicit: m.implicit,
				RootCAs:  m.ca,
				User:     m.user,
				Pass:     m.pass,
				To:       m.user2,
				Copies: func(ctx context.Context, ids, sure []string) (map[string]int, error) {
					return maildirCopies(ctx, dir, ids, sure)
				},
			},
		})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		t.Log(rep.Summary())
		for _, v := range rep.Violations {
			t.Errorf("seed %d: %s, message %d: %s", seed, v.Class, v.Message, strings.TrimRight(v.Detail, "\n"))
		}
		if n := rep.Outcomes["nil"]; n < rep.Messages/4 {
			t.Errorf("seed %d: only %d of %d messages delivered: the faults leave too little to check", seed, n, rep.Messages)
		}
	}
}

// maildirCopies counts, among the messages in the maildir dir, the copies
// of each Message-ID in ids. It waits until every id in sure (the
// messages a Send returned nil for) arrived, or ctx ends, and then until
// no new copy arrived for 3 s: Postfix delivers asynchronously, and a
// message whose outcome the client could not know may still be on its way.
func maildirCopies(ctx context.Context, dir string, ids, sure []string) (map[string]int, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want["<"+id+">"] = true
	}
	seen := map[string]string{} // path → Message-ID
	count := func() (map[string]int, int) {
		files := 0
		for _, sub := range []string{"new", "cur"} {
			entries, _ := os.ReadDir(filepath.Join(dir, sub))
			for _, e := range entries {
				path := filepath.Join(dir, sub, e.Name())
				if _, ok := seen[path]; !ok {
					seen[path] = maildir.Header(path, "Message-ID")
				}
			}
		}
		copies := map[string]int{}
		for _, id := range seen {
			if want[id] {
				copies[strings.Trim(id, "<>")]++
				files++
			}
		}
		return copies, files
	}
	last, quietSince := -1, time.Now()
	for {
		copies, files := count()
		if files != last {
			last, quietSince = files, time.Now()
		}
		arrived := true
		for _, id := range sure {
			if copies[id] == 0 {
				arrived = false
				break
			}
		}
		if arrived && time.Since(quietSince) >= 3*time.Second {
			return copies, nil
		}
		select {
		case <-ctx.Done():
			return copies, nil // the checker says which are missing
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestInteropChaosPostfixOneLoginForAWrongPassword: through a proxy, eight
// goroutines sending with a wrong password through one Mailer make Postfix
// see exactly one AUTH, and every Send fails with ErrAuthFailed. The proxy
// injects no fault here: a 535 lost on the way would rightly let the
// Mailer try again.
func TestInteropChaosPostfixOneLoginForAWrongPassword(t *testing.T) {
	m := realMTA(t)
	mark := logSize(t, m.log)
	px, err := netem.Start(m.implicit, netem.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	d := m.dialer(t, submit.PasswordAuth(m.user, "wrong-"+m.pass), tlsmode.Candidate{Port: px.Port(), Mode: tlsmode.Implicit})
	mailer := &submit.Mailer{Dialer: d, Host: "127.0.0.1", MaxConns: 3}
	var wg sync.WaitGroup
	errs := make([]error, 8*3)
	for g := range 8 {
		wg.Go(func() {
			for i := range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				errs[g*3+i] = mailer.Send(ctx, m.user, []string{m.user2}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
				cancel()
			}
		})
	}
	wg.Wait()
	mailer.Close()
	for i, err := range errs {
		if !errors.Is(err, submit.ErrAuthFailed) {
			t.Errorf("send %d: %v; want ErrAuthFailed", i, err)
		}
	}
	// Postfix logs asynchronously: wait for the first line, then a
	// moment for any other.
	deadline := time.Now().Add(10 * time.Second)
	for countInLogSince(t, m.log, mark, "authentication failed") < 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if n := countInLogSince(t, m.log, mark, "authentication failed"); n != 1 {
		t.Errorf("Postfix logged %d failed AUTH for %d sends from 8 goroutines; want exactly 1", n, len(errs))
	}
}
