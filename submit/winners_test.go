package submit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// countConns returns how many connections each listener address accepted.
func countConns(srv *submittest.Server) map[string]int {
	n := make(map[string]int)
	for _, c := range srv.Conns() {
		n[c.Addr]++
	}
	return n
}

// recordingStore is a WinnerStore that counts Forget calls.
type recordingStore struct {
	submit.WinnerStore
	mu      sync.Mutex
	forgets int
}

func (s *recordingStore) Forget(key string) {
	s.mu.Lock()
	s.forgets++
	s.mu.Unlock()
	s.WinnerStore.Forget(key)
}

func TestSecondDialStartsWithTheRememberedWinner(t *testing.T) {
	srv := submittest.NewServer(t)
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"),
		cand(srv, stripped, tlsmode.StartTLS), cand(srv, srv.Implicit, tlsmode.Implicit))
	d.FallbackDelay = -1 // strictly one after another: the order is visible in the connection counts

	for i, want := range []map[string]int{
		{srv.Addr(stripped): 1, srv.Addr(srv.Implicit): 1}, // policy order: the stripped port fails, implicit wins
		{srv.Addr(stripped): 1, srv.Addr(srv.Implicit): 2}, // the remembered implicit port first, and only it
		{srv.Addr(stripped): 1, srv.Addr(srv.Implicit): 3},
	} {
		c, err := d.Dial(context.Background(), "LOCALHOST")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Quit()
		if c.Candidate() != cand(srv, srv.Implicit, tlsmode.Implicit) {
			t.Errorf("dial %d won on %v", i, c.Candidate())
		}
		if got := countConns(srv); got[srv.Addr(stripped)] != want[srv.Addr(stripped)] || got[srv.Addr(srv.Implicit)] != want[srv.Addr(srv.Implicit)] {
			t.Errorf("after dial %d: connections %v; want %v", i, got, want)
		}
	}
}

func TestRememberedWinnerIsForgottenAfterTTLOrFailure(t *testing.T) {
	srv := submittest.NewServer(t)
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	hole := srv.Listen(tlsmode.StartTLS, submittest.Refuse)
	good, bad := cand(srv, srv.StartTLS, tlsmode.StartTLS), cand(srv, stripped, tlsmode.StartTLS)
	tests := []struct {
		name       string
		cands      []tlsmode.Candidate
		remembered submit.Winner
		firstConn  string // the listener the Dial must connect to first
		wantStored *tlsmode.Candidate
		forgets    int
	}{
		{"fresh", []tlsmode.Candidate{bad, good}, submit.Winner{Host: "localhost", Candidate: good, At: time.Now().Add(-time.Hour)},
			srv.Addr(srv.StartTLS), &good, 0},
		{"expired", []tlsmode.Candidate{bad, good}, submit.Winner{Host: "localhost", Candidate: good, At: time.Now().Add(-25 * time.Hour)},
			srv.Addr(stripped), &good, 1},
		{"other host", []tlsmode.Candidate{bad, good}, submit.Winner{Host: "mail.other.example", Candidate: good, At: time.Now()},
			srv.Addr(stripped), &good, 0},
		{"not in the policy", []tlsmode.Candidate{bad, good}, submit.Winner{Host: "localhost", Candidate: tlsmode.Candidate{Port: 1, Mode: tlsmode.Plaintext}, At: time.Now()},
			srv.Addr(stripped), &good, 0},
		{"failed", []tlsmode.Candidate{cand(srv, hole, tlsmode.StartTLS), bad}, submit.Winner{Host: "localhost", Candidate: bad, At: time.Now()},
			srv.Addr(stripped), nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &recordingStore{WinnerStore: submit.NewMemoryWinnerStore(0)}
			store.Put("localhost", tt.remembered)
			d := dialerFor(srv, nil, tt.cands...)
			d.FallbackDelay = -1
			d.Winners = store
			before := len(srv.Conns())
			c, err := d.Dial(context.Background(), "localhost")
			if err == nil {
				c.Quit()
			}
			if conns := srv.Conns(); len(conns) <= before || conns[before].Addr != tt.firstConn {
				t.Errorf("first connection not to %s (%d before, %d now)", tt.firstConn, before, len(conns))
			}
			w, ok := store.Get("localhost")
			if ok != (tt.wantStored != nil) || ok && w.Candidate != *tt.wantStored {
				t.Errorf("stored %+v, %v; want %v", w, ok, tt.wantStored)
			}
			if store.forgets != tt.forgets {
				t.Errorf("Forget called %d times; want %d", store.forgets, tt.forgets)
			}
		})
	}
}

func TestNegativeWinnerTTLRemembersNothing(t *testing.T) {
	srv := submittest.NewServer(t)
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	d := dialerFor(srv, nil, cand(srv, stripped, tlsmode.StartTLS), cand(srv, srv.StartTLS, tlsmode.StartTLS))
	d.FallbackDelay = -1
	d.WinnerTTL = -1
	for range 2 {
		c, err := d.Dial(context.Background(), "localhost")
		if err != nil {
			t.Fatal(err)
		}
		c.Quit()
	}
	if n := countConns(srv)[srv.Addr(stripped)]; n != 2 {
		t.Errorf("stripped port tried %d times; want 2 (policy order each time)", n)
	}
}

func TestMemoryWinnerStoreIsBoundedAndConcurrent(t *testing.T) {
	s := submit.NewMemoryWinnerStore(3)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			k := string(rune('a' + i%5))
			s.Put(k, submit.Winner{Host: k, At: time.Unix(int64(i), 0)})
			s.Get(k)
			if i%7 == 0 {
				s.Forget(k)
			}
		})
	}
	wg.Wait()
	n := 0
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if _, ok := s.Get(k); ok {
			n++
		}
	}
	if n > 3 {
		t.Errorf("store holds %d hosts; want at most 3", n)
	}
}
