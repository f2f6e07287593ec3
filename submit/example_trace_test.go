package submit_test

import (
	"context"
	"crypto/tls"
	"errors"
	"expvar"
	"fmt"
	"log"
	"strings"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// A Trace exports metrics without portwise depending on a metrics library:
// here expvar counters, in production as well an OpenTelemetry span per
// attempt or a Prometheus counter vector.
func ExampleTrace() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)

	var metrics expvar.Map // publish it with expvar.Publish("smtp", &metrics)
	trace := &submit.Trace{
		AttemptDone: func(a submit.Attempt) {
			outcome := "ok"
			switch {
			case errors.Is(a.Err, submit.ErrSTARTTLSStripped):
				outcome = "stripped"
			case a.Err != nil:
				outcome = "failed"
			}
			metrics.Add("attempts_"+a.Candidate.Mode.String()+"_"+outcome, 1)
		},
		TLSHandshakeDone: func(a submit.Attempt) {
			if a.Err == nil {
				metrics.Add("tls_"+strings.ReplaceAll(tls.VersionName(a.TLS.Version), " ", ""), 1)
			}
		},
		AuthDone: func(a submit.Attempt) {
			if a.Err == nil {
				metrics.Add("auth_"+a.Mechanism, 1)
			}
		},
		WinnerChosen: func(a submit.Attempt) { metrics.Add("winner_"+a.Candidate.Mode.String(), 1) },
	}

	d := &submit.Dialer{
		Candidates: []tlsmode.Candidate{
			{Port: stripped.Port, Mode: tlsmode.StartTLS},
			{Port: srv.Implicit.Port, Mode: tlsmode.Implicit},
		},
		TLSConfig:     srv.ClientTLSConfig(),
		Auth:          submit.PlainAuth("", "user", "pass"),
		FallbackDelay: -1,
	}
	c, err := d.Dial(submit.WithTrace(context.Background(), trace), "localhost")
	if err != nil {
		log.Fatal(err)
	}
	c.Quit()
	metrics.Do(func(kv expvar.KeyValue) { fmt.Println(kv.Key, kv.Value) })
	// Output:
	// attempts_implicit_ok 1
	// attempts_starttls_stripped 1
	// auth_PLAIN 1
	// tls_TLS1.3 1
	// winner_implicit 1
}
