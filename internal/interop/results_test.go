package interop

import (
	"encoding/json"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/interop/matrix"
)

// results collects what TestMatrix found, written as JSON to the file
// named by PORTWISE_INTEROP_RESULTS when the tests end; go run
// ./internal/interop/readme turns it into README.md's table.
var results = &collector{servers: map[string]*serverResults{}}

type collector struct {
	mu      sync.Mutex
	servers map[string]*serverResults
}

type serverResults struct {
	mu sync.Mutex
	r  matrix.Server
}

func (c *collector) server(l *live) *serverResults {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &serverResults{r: matrix.Server{Name: l.name, Title: l.title, Version: l.version, Checks: map[string]*matrix.Check{}}}
	c.servers[l.name] = s
	return s
}

// checkResult is one check's outcome: Summary is set by the check, OK when
// its test ends (a check that fails or panics is not OK).
type checkResult = matrix.Check

// check starts recording the check name of t.
func (s *serverResults) check(t *testing.T, name string) *checkResult {
	r := &checkResult{}
	s.mu.Lock()
	s.r.Checks[name] = r
	s.mu.Unlock()
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		r.OK = !t.Failed() && !t.Skipped()
		if t.Skipped() {
			r.Summary = "skipped"
		}
	})
	return r
}

// finish adds the server's notes: the known quirks, and what the run saw.
func (s *serverResults) finish(l *live) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	s.r.Notes = slices.Clone(l.notes)
	s.r.Banners = map[string]string{}
	for m, b := range l.bannerByMode {
		s.r.Banners[m.String()] = b
	}
	slices.Sort(l.observed)
	s.r.Observed = slices.Compact(l.observed)
}

// write saves the results of the servers that ran, in the matrix's order.
func (c *collector) write(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := matrix.Results{Generated: time.Now().UTC().Format(time.DateOnly)}
	for _, s := range matrixServers {
		if sr, ok := c.servers[s.name]; ok {
			sr.mu.Lock()
			out.Servers = append(out.Servers, sr.r)
			sr.mu.Unlock()
		}
	}
	if len(out.Servers) == 0 {
		return nil
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
