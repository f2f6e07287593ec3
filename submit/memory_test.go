package submit_test

import (
	"context"
	"crypto/sha256"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// lineSource generates a message of n bytes lazily: no copy of it exists in
// memory, so the heap can only grow if Send buffers it.
type lineSource struct {
	n, off int64
	line   []byte
}

func (s *lineSource) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && s.off < s.n {
		c := copy(p[k:], s.line[s.off%int64(len(s.line)):])
		if rem := s.n - s.off; int64(c) > rem {
			c = int(rem)
		}
		k += c
		s.off += int64(c)
	}
	return k, nil
}

// peakHeap samples the live heap until stop is closed and returns the peak.
func peakHeap(stop <-chan struct{}) *atomic.Uint64 {
	var peak atomic.Uint64
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return &peak
}

func TestSendStreamsFiftyMegabytesInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 50 MB")
	}
	tests := []struct {
		name string
		o    *submit.SendOptions
	}{
		{"BDAT in chunks", nil},
		{"DATA", &submit.SendOptions{NoChunking: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sendFiftyMegabytes(t, tt.o)
		})
	}
}

func sendFiftyMegabytes(t *testing.T, o *submit.SendOptions) {
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{DiscardData: true, MaxMessageBytes: 100 << 20})
	d := &submit.Dialer{
		Candidates: []tlsmode.Candidate{{Port: addr.Port, Mode: tlsmode.Implicit}},
		TLSConfig:  srv.ClientTLSConfig(),
		Auth:       submit.PlainAuth("", "user", "pass"),
	}
	var transcript strings.Builder
	d.Transcript = &transcript
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()

	line := []byte("Subject: 50 MB\r\n\r\n" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abc\r\n")
	size := int64(50<<20) / int64(len(line)) * int64(len(line)) // whole lines: nothing to add
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := peakHeap(stop)
	t0 := time.Now()
	_, err = c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, &lineSource{n: size, line: line}, o)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(t0)
	growth := int64(peak.Load()) - int64(before.HeapAlloc)
	t.Logf("50 MB sent in %s (%.0f MB/s); heap peak %.2f MB above the %.2f MB before",
		elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6, float64(growth)/(1<<20), float64(before.HeapAlloc)/(1<<20))
	if growth > 4<<20 {
		t.Errorf("heap grew by %d bytes while sending; want ≤ 4 MiB (the message must stream)", growth)
	}
	if chunked := strings.Contains(transcript.String(), "BDAT 1048576"); chunked != (o == nil) {
		t.Errorf("sent in BDAT chunks: %v, want %v", chunked, o == nil)
	}

	// The server got every byte, in order.
	h := sha256.New()
	io.Copy(h, &lineSource{n: size, line: line})
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].Size != size {
		t.Fatalf("server received %d messages, size %d", len(msgs), msgs[0].Size)
	}
	var want [32]byte
	h.Sum(want[:0])
	if msgs[0].SHA256 != want {
		t.Error("the received message differs from the one sent")
	}
}
