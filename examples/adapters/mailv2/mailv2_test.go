package mailv2_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	mail "gopkg.in/mail.v2"

	"github.com/portwise/portwise/examples/adapters/mailv2"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
)

func dialer(srv *submittest.Server) *submit.Dialer {
	return &submit.Dialer{
		Candidates: srv.Candidates(),
		TLSConfig:  srv.ClientTLSConfig(),
		Auth:       submit.PasswordAuth("user", "pass"),
		Timeout:    10 * time.Second,
	}
}

func message(subject string) *mail.Message {
	m := mail.NewMessage()
	m.SetHeader("From", "App <app@example.com>")
	m.SetHeader("To", "you@example.com")
	m.SetHeader("Cc", "boss@example.com")
	m.SetHeader("Bcc", "audit@example.com")
	m.SetHeader("Subject", subject)
	m.SetBody("text/plain", "Hello.\n.a line starting with a dot\n")
	m.AddAlternative("text/html", "<p>Hello.</p>")
	return m
}

func TestMailSendThroughAPortwiseMailerAndClient(t *testing.T) {
	srv := submittest.NewServer(t)
	tests := []struct {
		name   string
		sender func(t *testing.T) mail.SendCloser
	}{
		{"Mailer", func(t *testing.T) mail.SendCloser {
			return &mailv2.Sender{Mailer: &submit.Mailer{Dialer: dialer(srv), Host: "localhost"}}
		}},
		{"Client", func(t *testing.T) mail.SendCloser {
			c, err := dialer(srv).Dial(context.Background(), "localhost")
			if err != nil {
				t.Fatal(err)
			}
			return &mailv2.ClientSender{Client: c}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.sender(t)
			before := len(srv.Messages())
			if err := mail.Send(s, message(tt.name+" 1"), message(tt.name+" 2")); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got := srv.Messages()[before:]
			if len(got) != 2 {
				t.Fatalf("%d messages, want 2", len(got))
			}
			for i, m := range got {
				data := string(m.Data)
				if m.From != "app@example.com" || !slices.Equal(m.To, []string{"you@example.com", "boss@example.com", "audit@example.com"}) {
					t.Errorf("envelope %s -> %v", m.From, m.To)
				}
				if !m.TLS || m.AuthUser != "user" {
					t.Errorf("TLS %v, user %q", m.TLS, m.AuthUser)
				}
				if !strings.Contains(data, "Subject: "+tt.name+" "+string(rune('1'+i))) || !strings.Contains(data, "text/html") {
					t.Errorf("message %d:\n%s", i, data)
				}
				if strings.Contains(data, "audit@example.com") {
					t.Error("the Bcc address is in the message")
				}
			}
			// Both messages went over one connection.
			if conns := srv.Conns(); conns[len(conns)-1].Messages != 2 {
				t.Errorf("the last connection carried %d messages, want 2", conns[len(conns)-1].Messages)
			}
		})
	}
}

func TestMailSendReportsPortwiseErrors(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{"boss@example.com": "550 5.1.1 no such user"}})
	s := &mailv2.Sender{Mailer: &submit.Mailer{Dialer: dialer(srv), Host: "localhost"}}
	defer s.Close()
	err := mail.Send(s, message("partly refused"))
	var me *mail.SendError
	var se *submit.SendError
	// mail.v2's SendError does not unwrap: look at its Cause.
	if !errors.As(err, &me) || !errors.As(me.Cause, &se) || len(se.Rejected) != 1 || se.Rejected[0].Addr != "boss@example.com" {
		t.Fatalf("err = %v, want a *submit.SendError for boss@example.com", err)
	}
	if m := srv.Messages(); len(m) != 1 || slices.Contains(m[0].To, "boss@example.com") {
		t.Errorf("messages = %+v, want one, without the refused recipient", m)
	}
}
