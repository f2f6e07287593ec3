package discover_test

import (
	"testing"

	"github.com/portwise/portwise/internal/dnstest"
	"github.com/portwise/portwise/submit/submittest"
)

type dnsServer = dnstest.Server

// startDNS serves records from a real DNS server on loopback until the test
// ends; see dnstest.Start.
func startDNS(t *testing.T, records ...string) *dnsServer {
	t.Helper()
	return dnstest.Start(t, records...)
}

const testMsg = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"

// countConns counts the connections each listener accepted.
func countConns(srv *submittest.Server) map[string]int {
	n := make(map[string]int)
	for _, c := range srv.Conns() {
		n[c.Addr]++
	}
	return n
}
