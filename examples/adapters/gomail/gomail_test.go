package gomail_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/portwise/portwise/examples/adapters/gomail"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
)

func compose(t *testing.T) *mail.Msg {
	t.Helper()
	m := mail.NewMsg()
	if err := m.From("App <app@example.com>"); err != nil {
		t.Fatal(err)
	}
	if err := m.To("you@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := m.Cc("boss@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := m.Bcc("audit@example.com"); err != nil {
		t.Fatal(err)
	}
	m.Subject("Quarterly report")
	m.SetBodyString(mail.TypeTextPlain, "Attached.\n.a line starting with a dot\n")
	m.AddAlternativeString(mail.TypeTextHTML, "<p>Attached.</p>")
	if err := m.AttachReader("report.csv", strings.NewReader(strings.Repeat("q1,q2,q3,q4\n", 200))); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestComposedMsgSentThroughPortwise(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{EnableDSN: true})
	d := &submit.Dialer{
		Candidates: srv.Candidates(),
		TLSConfig:  srv.ClientTLSConfig(),
		Auth:       submit.PasswordAuth("user", "pass"),
		Timeout:    10 * time.Second,
	}
	ctx := context.Background()
	c, err := d.Dial(ctx, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	mailer := &submit.Mailer{Dialer: d, Host: "localhost"}
	defer mailer.Close()

	tests := []struct {
		name string
		s    gomail.Sender
	}{
		{"Client", c},
		{"Mailer", mailer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &submit.SendOptions{DSN: &submit.DSNOptions{Notify: []string{"FAILURE"}, EnvelopeID: "report-" + tt.name}}
			res, err := gomail.Send(ctx, tt.s, compose(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			got := msgs[len(msgs)-1]
			data := string(got.Data)
			if res.QueueID != got.QueueID || res.Size < int64(len(data)) {
				t.Errorf("result %+v; server: queue id %s, %d bytes", res, got.QueueID, len(data))
			}
			if got.From != "app@example.com" || !slices.Equal(got.To, []string{"you@example.com", "boss@example.com", "audit@example.com"}) || !slices.Equal(res.Accepted, got.To) {
				t.Errorf("envelope %s -> %v, accepted %v", got.From, got.To, res.Accepted)
			}
			if got.MailOptions.EnvelopeID != "report-"+tt.name || !got.TLS {
				t.Errorf("ENVID %q, TLS %v", got.MailOptions.EnvelopeID, got.TLS)
			}
			for _, want := range []string{"Subject: Quarterly report", "multipart/mixed", `filename="report.csv"`, "text/html"} {
				if !strings.Contains(data, want) {
					t.Errorf("message lacks %q", want)
				}
			}
			if strings.Contains(data, "audit@example.com") {
				t.Error("the Bcc address is in the message")
			}
		})
	}
}

func TestMsgWithoutRecipientsIsRefusedBeforeSending(t *testing.T) {
	srv := submittest.NewServer(t)
	m := mail.NewMsg()
	if err := m.From("app@example.com"); err != nil {
		t.Fatal(err)
	}
	mailer := &submit.Mailer{Dialer: &submit.Dialer{Candidates: srv.Candidates(), TLSConfig: srv.ClientTLSConfig()}, Host: "localhost"}
	defer mailer.Close()
	if _, err := gomail.Send(context.Background(), mailer, m, nil); !errors.Is(err, mail.ErrNoRcptAddresses) {
		t.Fatalf("err = %v, want ErrNoRcptAddresses", err)
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("%d connections made for a message without recipients", n)
	}
}
