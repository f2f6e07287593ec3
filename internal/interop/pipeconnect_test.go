package interop

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/netem"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// eximServer is the matrix's Exim, which advertises PIPECONNECT.
func eximServer(t *testing.T) *live {
	t.Helper()
	for i := range matrixServers {
		if matrixServers[i].name == "exim" {
			return liveServer(t, &matrixServers[i])
		}
	}
	t.Fatal("no exim in the matrix")
	return nil
}

// TestInteropEximPipeConnect: the real Exim advertises PIPECONNECT; a
// Dialer's second session to it sends EHLO (and STARTTLS) before the
// banner (the client's transcript shows them above the 220) and AUTH with
// the EHLO after TLS, the message is accepted, and at 20 ms round trip
// the session costs 1.5 round trips fewer at least. (Exim's own log marks
// early pipelining with L* only when the EHLO reached it before it wrote
// its banner, which the latency proxy makes rare.)
func TestInteropEximPipeConnect(t *testing.T) {
	l := eximServer(t)
	const oneWay = 10 * time.Millisecond
	for _, cand := range l.candidates() {
		t.Run(cand.Mode.String(), func(t *testing.T) {
			proxy, err := netem.NewProxy(fmt.Sprintf("127.0.0.1:%d", cand.Port), oneWay)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			d := &submit.Dialer{
				Candidates: []tlsmode.Candidate{{Port: proxy.Port(), Mode: cand.Mode}},
				TLSConfig:  &tls.Config{RootCAs: l.ca, ServerName: "localhost"},
				Auth:       submit.PasswordAuth(l.user, l.pass),
				NetDialer:  &netem.Dialer{OneWay: oneWay},
				Timeout:    20 * time.Second,
			}
			var rtts [2]float64
			var flights [2]int64
			for i := range 2 {
				proxy.Reset()
				var tr strings.Builder
				d.Transcript = &tr
				t0 := time.Now()
				c, err := d.Dial(context.Background(), "127.0.0.1")
				if err != nil {
					t.Fatal(err)
				}
				res, err := c.SendWith(context.Background(), l.user, []string{l.rcpt}, strings.NewReader("Subject: pipeconnect\r\n\r\nearly\r\n"), nil)
				rtts[i] = float64(time.Since(t0)) / float64(2*oneWay)
				flights[i] = proxy.ClientFlights()
				c.Quit()
				if err != nil || res.QueueID == "" {
					t.Fatalf("session %d: %v (queue id %q)\n%s", i+1, err, res.QueueID, tr.String())
				}
				early := strings.Contains(tr.String(), "*: PIPECONNECT: EHLO") &&
					strings.Index(tr.String(), "C: EHLO") < strings.Index(tr.String(), "S: 220 ")
				if early != (i == 1) {
					t.Fatalf("session %d: EHLO before the banner %v, want %v\n%s", i+1, early, i == 1, tr.String())
				}
			}
			// Wall time counts Exim's own time per connection too (a fork,
			// a GnuTLS handshake); the proxy's client flights count the
			// round trips the protocol made.
			t.Logf("%s, connect → accepted at 20 ms RTT: first session %.2f round trips of wall time (%d client flights), with PIPECONNECT %.2f (%d)",
				cand.Mode, rtts[0], flights[0], rtts[1], flights[1])
			if rtts[1] > rtts[0]-1.5 {
				t.Errorf("PIPECONNECT saved %.2f round trips; want at least 1.5", rtts[0]-rtts[1])
			}
		})
	}
}
