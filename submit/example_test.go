package submit_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func ExampleDialer_Dial() {
	srv := submittest.NewServer(nil)
	defer srv.Close()

	d := &submit.Dialer{
		// In production leave Candidates nil for 587, 465, 2525 and
		// TLSConfig nil for the system roots.
		Candidates: srv.Candidates(),
		TLSConfig:  srv.ClientTLSConfig(),
		Auth:       submit.PasswordAuth("user", "pass"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, "localhost")
	if err != nil {
		log.Fatal(err) // a *submit.DialError: one line per port, with advice
	}
	defer c.Quit()
	fmt.Println(c.Mode(), c.Mechanism())
	// Output: starttls PLAIN
}

func ExampleClient_Send() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	d := srv.Dialer(submit.PlainAuth("", "user", "pass")) // trusts the test server
	c, err := d.Dial(context.Background(), "localhost")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()

	// Bare LFs become CRLF and the line starting with "." is stuffed: no
	// message content can end DATA early.
	msg := "Subject: hi\n\nhello\n.\n"
	if err := c.Send(context.Background(), "me@example.com", []string{"you@example.com"}, strings.NewReader(msg)); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", srv.Messages()[0].Data)
	// Output: "Subject: hi\r\n\r\nhello\r\n.\r\n"
}

func ExampleDialError() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), stripped)
	_, err := d.Dial(context.Background(), "localhost")
	var de *submit.DialError
	fmt.Println(errors.As(err, &de), errors.Is(err, submit.ErrSTARTTLSStripped))
	// Output: true true
}
