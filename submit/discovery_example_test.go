package submit_test

import (
	"context"
	"fmt"
	"log"

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
