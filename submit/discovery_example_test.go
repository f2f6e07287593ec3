package submit_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
)

func ExampleParseURL() {
	// Typically os.Getenv("SMTP_URL"); the password is percent-encoded.
	d, host, err := submit.ParseURL("smtps://app%40example.com:p%40ss@smtp.example.com?timeout=20s")
	if err != nil {
		log.Fatal(err) // names the bad field, never shows the password
	}
	fmt.Println(host, d.Candidates, d.Timeout)
	fmt.Println(submit.RedactURL("smtps://app%40example.com:p%40ss@smtp.example.com"))
	// Output:
	// smtp.example.com [465/implicit] 20s
	// smtps://app%40example.com:xxxxx@smtp.example.com
}

func ExampleLookup() {
	ctx := context.Background()
	servers, err := submit.Lookup(ctx, "someone@gmail.com")
	if err != nil {
		log.Fatal(err)
	}
	d := &submit.Dialer{Auth: submit.PasswordAuth("someone@gmail.com", os.Getenv("APP_PASSWORD"))}
	c, err := d.DialServers(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()
}

func ExampleDialer_DialServers() {
	srv := submittest.NewServer(nil)
	defer srv.Close()

	d := &submit.Dialer{TLSConfig: srv.ClientTLSConfig(), Auth: submit.PasswordAuth("user", "pass")}
	c, err := d.DialServers(context.Background(), []submit.Server{
		{Host: "localhost", Candidates: srv.Candidates(), Source: "autoconfig"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()
	fmt.Println(c.Host(), c.Mode())
	// Output: localhost starttls
}

func ExampleDiscovery() {
	d := &submit.Dialer{
		// Without DNSSEC, pin the domains SRV targets may point into.
		Discovery: &submit.Discovery{AllowedDomains: []string{"example.com", "mailhost.example.net"}},
		Auth:      submit.PasswordAuth("me@example.com", os.Getenv("SMTP_PASSWORD")),
	}
	// Races the _submissions/_submission targets, then 587, 465, 2525 on
	// example.com itself.
	c, err := d.Dial(context.Background(), "example.com")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()
}
