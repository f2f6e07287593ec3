package submit_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	netsmtp "net/smtp"
	"strings"
	"sync"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
)

func ExampleMailer() {
	srv := submittest.NewServer(nil)
	defer srv.Close()
	d := srv.Dialer(submit.PasswordAuth("user", "pass")) // trusts the test server

	// One Mailer for the whole program: at most 3 connections, 2 kept
	// idle, each authenticated once and reused.
	m := &submit.Mailer{Dialer: d, Host: "localhost"}
	defer m.Close()

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			msg := fmt.Sprintf("Subject: order %d shipped\r\n\r\nOn its way.\r\n", i)
			if err := m.Send(context.Background(), "shop@example.com", []string{"customer@example.com"}, strings.NewReader(msg)); err != nil {
				log.Print(err) // errors.Is(err, submit.ErrOutcomeUnknown): do not resend blindly
			}
		})
	}
	wg.Wait()
	fmt.Println(len(srv.Messages()), "messages delivered")
	// Output: 20 messages delivered
}

// A provider that allows two sessions per account and 14 messages a
// second: the Mailer keeps to both, and retries what the server refused
// for now before it could have the message.
func ExampleMailer_limits() {
	srv := submittest.NewServer(nil, submittest.Options{MaxSessions: 2, FailEvery: 7})
	defer srv.Close()
	d := srv.Dialer(submit.PasswordAuth("user", "pass")) // trusts the test server

	m := &submit.Mailer{
		Dialer:       d,
		Host:         "localhost",
		RateLimit:    14, // messages per RateInterval, across all connections
		RateInterval: time.Second,
		MaxTries:     3,                     // per message; -1 turns retries off
		RetryDelay:   10 * time.Millisecond, // then 20 ms, with jitter
	}
	defer m.Close()

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			msg := fmt.Sprintf("Subject: receipt %d\r\n\r\nThanks.\r\n", i)
			if err := m.Send(context.Background(), "shop@example.com", []string{"customer@example.com"}, strings.NewReader(msg)); err != nil {
				log.Print(err)
			}
		})
	}
	wg.Wait()
	st := m.Stats()
	fmt.Println(st.Sent, "sent,", st.Failed, "failed; retried:", st.Retried > 0)
	// Output: 20 sent, 0 failed; retried: true
}

func ExampleClient_SendWith() {
	srv := submittest.NewServer(nil, submittest.Options{
		EnableDSN:        true,
		RejectRecipients: map[string]string{"gone@example.com": "550 5.1.1 no such user"},
	})
	defer srv.Close()
	d := srv.Dialer(submit.PasswordAuth("user", "pass")) // trusts the test server
	c, err := d.Dial(context.Background(), "localhost")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit()

	res, err := c.SendWith(context.Background(), "shop@example.com",
		[]string{"customer@example.com", "gone@example.com"},
		strings.NewReader("Subject: invoice\r\n\r\nAttached.\r\n"),
		&submit.SendOptions{DSN: &submit.DSNOptions{Notify: []string{"FAILURE"}, EnvelopeID: "invoice-1"}})
	var se *submit.SendError
	if errors.As(err, &se) {
		for _, r := range se.Rejected {
			fmt.Println("refused:", r.Addr, r.Reply.Code)
		}
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println("accepted:", res.Accepted)
	fmt.Println("queue id:", res.QueueID, "size:", res.Size)
	// Output:
	// refused: gone@example.com 550
	// accepted: [customer@example.com]
	// queue id: 4F2A1 size: 31
}

func ExampleSendMail() {
	// The net/smtp program, migrated: only the package of SendMail changed.
	// The host given to PlainAuth is the host part of addr, as in net/smtp.
	auth := netsmtp.PlainAuth("", "app@example.com", "app-password", "smtp.example.com")
	msg := []byte("To: you@example.com\r\nSubject: hello\r\n\r\nIt works.\r\n")
	err := submit.SendMail("smtp.example.com:587", auth, "app@example.com", []string{"you@example.com"}, msg)
	if errors.Is(err, submit.ErrSTARTTLSStripped) {
		log.Fatal("the network removed STARTTLS; nothing was sent in clear")
	}
}
