package probe_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func ExampleRun() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)

	// In production leave Candidates nil (587, 465, 2525, 25) and
	// TLSConfig nil (the system roots).
	rep, err := probe.Run(context.Background(), "127.0.0.1", probe.Options{
		Candidates: []tlsmode.Candidate{
			{Port: stripped.Port, Mode: tlsmode.StartTLS},
			{Port: srv.Implicit.Port, Mode: tlsmode.Implicit},
		},
		TLSConfig: srv.ClientTLSConfig(),
		Timeout:   10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range rep.Ports {
		fmt.Print(p.Mode, " ", p.Reachability, " usable=", p.Usable)
		for _, f := range p.Findings {
			fmt.Print(" ", f.Severity, ":", f.Code)
		}
		fmt.Println()
	}
	fmt.Println("recommended mode:", rep.Recommendation.Mode)
	// Output:
	// starttls open usable=false critical:starttls-missing
	// implicit open usable=true
	// recommended mode: implicit
}

func ExampleReport_WriteText() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	rep, err := probe.Run(context.Background(), "127.0.0.1", probe.Options{
		Candidates: srv.Candidates(),
		TLSConfig:  srv.ClientTLSConfig(),
	})
	if err != nil {
		log.Fatal(err)
	}
	// A table, each port in detail, the recommendation; colours with
	// WriteTextOptions(w, probe.TextOptions{Color: true}).
	rep.WriteText(os.Stdout)
}
