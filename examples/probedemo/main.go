// Command probedemo runs an in-process submission server (submittest) with a
// few of the problems real hosts have, so that portwise probe and portwise
// send can be tried without any outside network. It writes the server's CA
// certificate to a file and prints the commands to run, then serves until
// interrupted.
//
//	go run ./examples/probedemo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "probedemo:", err)
		os.Exit(1)
	}
}

// run starts the demo server, writes its CA certificate, prints the
// listeners and the commands to try to out, and serves until ctx ends.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("probedemo", flag.ContinueOnError)
	fs.SetOutput(out)
	caFile := fs.String("ca", filepath.Join(os.TempDir(), "portwise-demo-ca.pem"), "where to write the CA certificate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}

	srv := submittest.NewServer(nil)
	defer srv.Close()
	listeners := []struct {
		what string
		c    tlsmode.Candidate
	}{
		{"a good STARTTLS port (587)", srv.StartTLS},
		{"a good implicit TLS port (465)", srv.Implicit},
		{"a port whose STARTTLS a firewall strips", srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)},
		{"a port offering AUTH before TLS", srv.Listen(tlsmode.StartTLS, submittest.AuthBeforeTLS)},
		{"a port that swallows packets (blocked)", srv.Listen(tlsmode.StartTLS, submittest.Blackhole)},
	}
	if err := os.WriteFile(*caFile, srv.CACertPEM(), 0o644); err != nil {
		return fmt.Errorf("writing the CA certificate: %w", err)
	}
	var ports []string
	for _, l := range listeners {
		fmt.Fprintf(out, "%-14s %s\n", l.c, l.what)
		ports = append(ports, l.c.String())
	}
	fmt.Fprintf(out, "\nCA certificate: %s; account user / pass\n\n", *caFile)
	fmt.Fprintf(out, "  go run ./cmd/portwise probe -ca %s -port %s -timeout 3s 127.0.0.1\n", *caFile, strings.Join(ports, ","))
	fmt.Fprintf(out, "  PW=pass go run ./cmd/portwise send -v -ca %s -port %s -user user -password-env PW -from me@example.com -to you@example.com 127.0.0.1\n\n", *caFile, ports[0])
	fmt.Fprintln(out, "serving; Ctrl-C stops")

	<-ctx.Done()
	return nil
}
