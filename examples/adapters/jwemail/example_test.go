package jwemail_test

import (
	"context"
	"fmt"
	netsmtp "net/smtp"
	"time"

	"github.com/jordan-wright/email"

	"github.com/portwise/portwise/examples/adapters/jwemail"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
)

func ExampleSend() {
	srv := submittest.NewServer(nil) // stands in for smtp.example.com
	defer srv.Close()
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}
	defer m.Close()

	e := email.NewEmail()
	e.From = "App <app@example.com>"
	e.To = []string{"you@example.com"}
	e.Bcc = []string{"audit@example.com"}
	e.Subject = "Your order"
	e.Text = []byte("It has shipped.\n")
	// Was: err := e.Send("smtp.example.com:587", smtp.PlainAuth(...))
	if err := jwemail.Send(context.Background(), m, e); err != nil {
		fmt.Println(err)
		return
	}
	got := srv.Messages()[0]
	fmt.Println(got.From, got.To, got.TLS)
	// Output: app@example.com [you@example.com audit@example.com] true
}

func ExampleNewPool() {
	srv := submittest.NewServer(nil)
	defer srv.Close()

	// Was: p, err := email.NewPool(addr, 2, auth, tlsConfig)
	p, err := jwemail.NewPool(srv.Addr(srv.StartTLS), 2, netsmtp.PlainAuth("", "user", "pass", "127.0.0.1"), srv.ClientTLSConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	e := &email.Email{From: "app@example.com", To: []string{"you@example.com"}, Subject: "Hi", Text: []byte("Hello.\n")}
	if err := p.Send(e, 10*time.Second); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(srv.Messages()), "message, authenticated as", srv.Messages()[0].AuthUser)
	// Output: 1 message, authenticated as user
}
