package discover_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/discover"
)

func ExampleLookup() {
	ctx := context.Background()
	servers, err := discover.Lookup(ctx, "someone@gmail.com")
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

func ExampleSRV() {
	d := &submit.Dialer{
		// Without DNSSEC, pin the domains SRV targets may point into.
		Discover: (&discover.SRV{AllowedDomains: []string{"example.com", "mailhost.example.net"}}).Lookup,
		Auth:     submit.PasswordAuth("me@example.com", os.Getenv("SMTP_PASSWORD")),
	}
	// Races the _submissions/_submission targets, then 587, 465, 2525 on
	// example.com itself.
	c, err := d.Dial(context.Background(), "example.com")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()
}

func ExampleProviderForHost() {
	ses, ok := discover.ProviderForHost("email-smtp.eu-west-1.amazonaws.com")
	fmt.Println(ses.Candidates, ok)
	p, _ := discover.ProviderForHost("smtp.sendgrid.net")
	fmt.Println(p.Name, p.Username, p.Auth)
	// Output:
	// [587/starttls 465/implicit 2587/starttls 2465/implicit 25/starttls] true
	// SendGrid apikey [api-key]
}
