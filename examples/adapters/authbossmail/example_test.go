package authbossmail_test

import (
	"context"
	"fmt"

	"github.com/volatiletech/authboss/v3"

	"github.com/portwise/portwise/examples/adapters/authbossmail"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
)

func ExampleMailer() {
	srv := submittest.NewServer(nil) // stands in for smtp.example.com
	defer srv.Close()
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}
	defer m.Close()

	ab := authboss.New()
	// Was: ab.Config.Core.Mailer = defaults.NewSMTPMailer("smtp.example.com:587", auth)
	ab.Config.Core.Mailer = &authbossmail.Mailer{Mailer: m}

	// What Authboss's confirm module does after a sign-up:
	err := ab.Config.Core.Mailer.Send(context.Background(), authboss.Email{
		To: []string{"new.user@example.com"}, From: "noreply@example.com",
		Subject: "Confirm New Account", TextBody: "Follow this link to confirm.\n",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	got := srv.Messages()[0]
	fmt.Println(got.From, got.To, got.TLS)
	// Output: noreply@example.com [new.user@example.com] true
}
