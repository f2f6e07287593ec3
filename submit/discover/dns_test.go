package submit_test

import (
	"testing"

	"github.com/portwise/portwise/internal/dnstest"
)

type dnsServer = dnstest.Server

// startDNS serves records from a real DNS server on loopback until the test
// ends; see dnstest.Start.
func startDNS(t *testing.T, records ...string) *dnsServer {
	t.Helper()
	return dnstest.Start(t, records...)
}
