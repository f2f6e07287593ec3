// Package maildir finds messages a real server delivered to a maildir, for
// the tests that send through one: by the value of a header field, reading
// each file's header once, since the maildirs keep every earlier run's
// messages.
package maildir

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Index remembers the value of one header field in each file it has read.
// It is safe for concurrent use.
type Index struct {
	field string
	mu    sync.Mutex
	seen  map[string]string // path → value
}

// NewIndex returns an Index of the header field named field ("Subject",
// "Message-ID").
func NewIndex(field string) *Index {
	return &Index{field: field, seen: map[string]string{}}
}

// Find returns the path of a file in dir whose field is value, or "".
func (x *Index) Find(dir, value string) string {
	entries, _ := os.ReadDir(dir)
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		got, ok := x.seen[path]
		if !ok {
			got = Header(path, x.field)
			x.seen[path] = got
		}
		if got == value {
			return path
		}
	}
	return ""
}

// Wait polls dir every 100 ms until a file whose field is value arrives,
// for at most within; it returns that file's contents, or false.
func (x *Index) Wait(dir, value string, within time.Duration) ([]byte, bool) {
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		if path := x.Find(dir, value); path != "" {
			if b, err := os.ReadFile(path); err == nil {
				return b, true
			}
		}
		if time.Now().After(deadline) {
			return nil, false
		}
	}
}

// Header returns the value of the header field named field in the message
// at path, unfolded and trimmed, or "" when it has none; it stops at the
// end of the header.
func Header(path, field string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	prefix := field + ":"
	var value string
	found, in := false, false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == "":
			return strings.TrimSpace(value)
		case in && (line[0] == ' ' || line[0] == '\t'):
			value += line
		case !found && len(line) >= len(prefix) && strings.EqualFold(line[:len(prefix)], prefix):
			value, found, in = line[len(prefix):], true, true
		default:
			in = false
		}
	}
	return strings.TrimSpace(value)
}
