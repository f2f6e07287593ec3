package submit

import (
	"strings"
	"sync"
	"time"

	"github.com/portwise/portwise/tlsmode"
)

// Winner is the server and candidate that last won a Dial, and when.
type Winner struct {
	Host      string // the server that won: the host dialled, or an SRV target
	Candidate tlsmode.Candidate
	At        time.Time
	// PipeConnect reports that the server advertised PIPECONNECT
	// (draft-harris-early-pipe-01: Exim does) in its EHLO replies, before
	// TLS too on a STARTTLS port; Extensions is what it offered after
	// TLS. The next Dial then sends EHLO without waiting for the banner,
	// and AUTH with it (see Dialer.DisablePipeConnect).
	PipeConnect bool
	Extensions  []string
}

// WinnerStore remembers one Winner per key, the host name given to Dial
// (lower-cased). Implementations must be safe for concurrent use; an
// application can persist winners across restarts by implementing it over
// a file or a database.
//
// A stored winner only reorders a Dial's plan: a candidate that is not in
// the current policy (or SRV answer) is ignored, so a tampered store cannot
// add a port or weaken a mode.
type WinnerStore interface {
	Get(key string) (Winner, bool)
	Put(key string, w Winner)
	Forget(key string)
}

// NewMemoryWinnerStore returns an in-memory WinnerStore holding at most
// limit hosts (limit <= 0 means 1024); when full, the oldest winner is
// dropped. It is what a Dialer uses when Winners is nil.
func NewMemoryWinnerStore(limit int) WinnerStore {
	if limit <= 0 {
		limit = 1024
	}
	return &memoryWinners{limit: limit, m: make(map[string]Winner)}
}

type memoryWinners struct {
	limit int
	mu    sync.Mutex
	m     map[string]Winner
}

func (s *memoryWinners) Get(key string) (Winner, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.m[key]
	return w, ok
}

func (s *memoryWinners) Put(key string, w Winner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= s.limit {
		var oldest string
		for k, v := range s.m {
			if oldest == "" || v.At.Before(s.m[oldest].At) {
				oldest = k
			}
		}
		delete(s.m, oldest)
	}
	s.m[key] = w
}

func (s *memoryWinners) Forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// winnerStore returns the store in use, or nil when remembering is off.
func (d *Dialer) winnerStore() WinnerStore {
	if d.WinnerTTL < 0 {
		return nil
	}
	if d.Winners != nil {
		return d.Winners
	}
	d.winOnce.Do(func() { d.winners = NewMemoryWinnerStore(0) })
	return d.winners
}

func (d *Dialer) winnerTTL() time.Duration {
	if d.WinnerTTL > 0 {
		return d.WinnerTTL
	}
	return defaultWinnerTTL
}

func winnerKey(host string) string {
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
