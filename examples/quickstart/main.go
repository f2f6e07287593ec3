// Command quickstart shows portwise end to end without any outside network:
// it starts an in-process submission server (submittest), dials it with the
// default policy mapped onto that server's ports, authenticates over
// verified TLS, sends one message, and prints the session transcript (with
// the credential redacted) and the message as the server received it.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	srv := submittest.NewServer(nil, submittest.Options{Accounts: map[string]string{"app@example.com": "app-password"}})
	defer srv.Close()

	// The default policy is 587/STARTTLS, 465/implicit TLS, 2525/STARTTLS;
	// the embedded server listens on free ports, so map the policy onto them.
	// 587 is made unreachable so the race falls back to implicit TLS.
	blocked := srv.Listen(tlsmode.StartTLS, submittest.Blackhole)
	policy := []tlsmode.Candidate{
		{Port: blocked.Port, Mode: tlsmode.StartTLS},
		{Port: srv.Implicit.Port, Mode: tlsmode.Implicit},
		{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS},
	}
	fmt.Fprintf(out, "policy: %v (the first port is blackholed, like a firewalled 587)\n\n", policy)

	d := &submit.Dialer{
		Candidates: policy,
		TLSConfig:  srv.ClientTLSConfig(), // trusts the embedded server's throwaway CA
		Auth:       submit.PasswordAuth("app@example.com", "app-password"),
		Transcript: out,
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := d.Dial(ctx, "localhost")
	if err != nil {
		return err
	}
	defer c.Quit()
	st, _ := c.ConnectionState()
	fmt.Fprintf(out, "\nconnected in %s: port %d, %s, %s verified, AUTH %s\n\n",
		time.Since(start).Round(time.Millisecond), c.Port(), c.Mode(), tls.VersionName(st.Version), c.Mechanism())

	msg := "From: app@example.com\nTo: you@example.com\nSubject: Hello from portwise\n\nIt works.\n.a line starting with a dot survives\n"
	if err := c.Send(ctx, "app@example.com", []string{"you@example.com"}, strings.NewReader(msg)); err != nil {
		return err
	}
	got := srv.Messages()
	if len(got) != 1 {
		return fmt.Errorf("the server has %d messages, want 1", len(got))
	}
	fmt.Fprintf(out, "\ndelivered to %v over TLS=%v as %s:\n%s", got[0].To, got[0].TLS, got[0].AuthUser, got[0].Data)
	return nil
}
