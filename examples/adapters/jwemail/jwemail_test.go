package jwemail_test

import (
	"context"
	"errors"
	"mime"
	"net/mail"
	netsmtp "net/smtp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jordan-wright/email"

	"github.com/portwise/portwise/examples/adapters/internal/realmta"
	"github.com/portwise/portwise/examples/adapters/jwemail"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

const subject = "Rapport trimestriel – été"

func compose(t *testing.T) *email.Email {
	t.Helper()
	e := email.NewEmail()
	e.From = "App <app@example.com>"
	e.To = []string{"You <you@example.com>"}
	e.Cc = []string{"boss@example.com"}
	e.Bcc = []string{"audit@example.com"}
	e.Subject = subject
	e.Text = []byte("Attached.\n.a line starting with a dot\n")
	e.HTML = []byte("<p>Attached.</p>")
	e.Headers.Set("X-Order", "42")
	if _, err := e.Attach(strings.NewReader(strings.Repeat("q1,q2,q3,q4\n", 200)), "report.csv", "text/csv"); err != nil {
		t.Fatal(err)
	}
	return e
}

// checkStored checks what the server stored for compose's Email.
func checkStored(t *testing.T, m submittest.Message) {
	t.Helper()
	if m.From != "app@example.com" || !slices.Equal(m.To, []string{"you@example.com", "boss@example.com", "audit@example.com"}) {
		t.Errorf("envelope %s -> %v", m.From, m.To)
	}
	if !m.TLS || m.AuthUser != "user" {
		t.Errorf("TLS %v, user %q", m.TLS, m.AuthUser)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	got, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || got != subject {
		t.Errorf("Subject %q (%q, %v), want %q", h.Get("Subject"), got, err, subject)
	}
	if h.Get("To") != `"You" <you@example.com>` || h.Get("Cc") != "<boss@example.com>" || h.Get("X-Order") != "42" {
		t.Errorf("To %q, Cc %q, X-Order %q", h.Get("To"), h.Get("Cc"), h.Get("X-Order"))
	}
	if h.Get("Message-Id") == "" || h.Get("Date") == "" || !strings.HasPrefix(h.Get("Content-Type"), "multipart/mixed") {
		t.Errorf("Message-Id %q, Date %q, Content-Type %q", h.Get("Message-Id"), h.Get("Date"), h.Get("Content-Type"))
	}
	data := string(m.Data)
	for _, want := range []string{"\r\n.a line starting with a dot", "text/html", `filename="report.csv"`} {
		if !strings.Contains(data, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	if strings.Contains(data, "audit@example.com") {
		t.Error("the Bcc address is in the message")
	}
}

func TestSendThroughAPortwiseClientAndMailer(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{EnableDSN: true})
	d := srv.Dialer(submit.PasswordAuth("user", "pass"))
	ctx := context.Background()
	c, err := d.Dial(ctx, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1"}
	defer m.Close()

	for _, tt := range []struct {
		name string
		s    jwemail.Sender
	}{{"Client", c}, {"Mailer", m}} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := jwemail.SendWith(ctx, tt.s, compose(t), &submit.SendOptions{DSN: &submit.DSNOptions{EnvelopeID: "order-42"}})
			if err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			got := msgs[len(msgs)-1]
			checkStored(t, got)
			if res.QueueID != got.QueueID || res.Size < got.Size || got.MailOptions.EnvelopeID != "order-42" {
				t.Errorf("result %+v; server: queue id %s, %d bytes, ENVID %q", res, got.QueueID, got.Size, got.MailOptions.EnvelopeID)
			}
		})
	}
}

func TestPoolSendsConcurrentlyOverAtMostCountConnections(t *testing.T) {
	srv := submittest.NewServer(t)
	// email.NewPool's arguments: host:port, count, a net/smtp Auth, a tls.Config.
	p, err := jwemail.NewPool(srv.Addr(srv.StartTLS), 2, netsmtp.PlainAuth("", "user", "pass", "127.0.0.1"), srv.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() { errs <- p.Send(compose(t), 10*time.Second) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	msgs := srv.Messages()
	if len(msgs) != 6 {
		t.Fatalf("%d messages, want 6", len(msgs))
	}
	for _, m := range msgs {
		checkStored(t, m)
	}
	conns, sent := srv.Conns(), 0
	for _, c := range conns {
		sent += c.Messages
		if c.AuthAttempts != 1 || !c.TLS {
			t.Errorf("connection: %d AUTH, TLS %v; want one AUTH over TLS", c.AuthAttempts, c.TLS)
		}
	}
	if len(conns) > 2 || sent != 6 {
		t.Errorf("%d connections carried %d messages; want at most 2 carrying 6", len(conns), sent)
	}
	if err := p.Send(compose(t), time.Second); !errors.Is(err, submit.ErrMailerClosed) {
		t.Errorf("Send after Close: %v, want ErrMailerClosed", err)
	}
}

// Where email.Pool would send the password and the message in clear, the
// portwise pool sends neither.
func TestPoolRefusesAStrippedSTARTTLS(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{})
	stripped := srv.Listen(tlsmode.StartTLS, submittest.StripSTARTTLS)
	p, err := jwemail.NewPool(srv.Addr(stripped), 1, netsmtp.PlainAuth("", "user", "pass", "127.0.0.1"), srv.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Send(compose(t), 10*time.Second); !errors.Is(err, submit.ErrSTARTTLSStripped) {
		t.Fatalf("err = %v, want ErrSTARTTLSStripped", err)
	}
	for _, c := range srv.Conns() {
		for _, line := range c.Clear {
			if strings.HasPrefix(strings.ToUpper(line), "AUTH") || strings.HasPrefix(strings.ToUpper(line), "MAIL") {
				t.Errorf("sent in clear: %q", line)
			}
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestPortwiseErrorsComeBackAsTheyAre(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{"boss@example.com": "550 5.1.1 no such user"}})
	t.Run("refused recipient", func(t *testing.T) {
		m := &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}
		defer m.Close()
		err := jwemail.Send(context.Background(), m, compose(t))
		var se *submit.SendError
		if !errors.As(err, &se) || len(se.Rejected) != 1 || se.Rejected[0].Addr != "boss@example.com" {
			t.Fatalf("err = %v, want a *submit.SendError for boss@example.com", err)
		}
	})
	t.Run("outcome unknown is not sent again", func(t *testing.T) {
		drop := srv.Listen(tlsmode.StartTLS, submittest.DropAfterDot)
		before := len(srv.Messages())
		p := &jwemail.Pool{Mailer: &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass"), drop), Host: "127.0.0.1"}}
		defer p.Close()
		e := compose(t)
		e.Cc = nil
		if err := p.Send(e, 10*time.Second); !errors.Is(err, submit.ErrOutcomeUnknown) {
			t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
		}
		if n := len(srv.Messages()) - before; n != 1 {
			t.Errorf("the server got the message %d times, want once", n)
		}
	})
}

func TestHeaderInjectionIsRefusedBeforeConnecting(t *testing.T) {
	srv := submittest.NewServer(t)
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}
	defer m.Close()
	for _, tt := range []struct {
		name   string
		change func(e *email.Email)
	}{
		{"Subject with CRLF", func(e *email.Email) { e.Subject = "Hi\r\nBcc: evil@example.net" }},
		{"From with a bare CR", func(e *email.Email) { e.From = "app@example.com\rBcc: evil@example.net" }},
		{"To with LF", func(e *email.Email) { e.To = []string{"you@example.com\nBcc: evil@example.net"} }},
		{"header value with LF", func(e *email.Email) { e.Headers.Set("X-Order", "42\nBcc: evil@example.net") }},
		{"header value overriding To", func(e *email.Email) { e.Headers["To"] = []string{"x\r\nBcc: evil@example.net"} }},
		{"header name with CRLF", func(e *email.Email) { e.Headers["X-A\r\nBcc"] = []string{"evil@example.net"} }},
		{"header name with a colon", func(e *email.Email) { e.Headers["Bcc: evil@example.net\r\nX"] = []string{"y"} }},
		{"header value with NUL", func(e *email.Email) { e.Headers.Set("X-Order", "4\x002") }},
		{"attachment filename", func(e *email.Email) { e.Attachments[0].Filename = "r.csv\"\r\n\r\nforged part" }},
		{"attachment header folded onto a blank line", func(e *email.Email) { e.Attachments[0].Header.Set("X-Part", "a\r\n \r\nb") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := compose(t)
			tt.change(e)
			if err := jwemail.Send(context.Background(), m, e); !errors.Is(err, jwemail.ErrBadHeader) {
				t.Fatalf("err = %v, want ErrBadHeader", err)
			}
		})
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("%d connections made for refused messages", n)
	}
}

// e.Bytes() folds the Content-Disposition it sets into the attachment's
// header; sending the same Email again must still work.
func TestTheSameEmailSendsTwice(t *testing.T) {
	srv := submittest.NewServer(t)
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}
	defer m.Close()
	e := compose(t)
	for i := range 2 {
		if err := jwemail.Send(context.Background(), m, e); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

func TestInteropPostfix(t *testing.T) {
	s := realmta.Require(t)
	e := email.NewEmail()
	e.From = "Alice <" + s.User + ">"
	e.To = []string{s.User2}
	e.Text = []byte("Sent with jordan-wright/email through portwise.\n.dot\n")
	if _, err := e.Attach(strings.NewReader("a,b\n1,2\n"), "data.csv", "text/csv"); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, got []byte) {
		for _, want := range []string{"From: \"Alice\" <" + s.User + ">", "\n.dot", `filename="data.csv"`} {
			if !strings.Contains(string(got), want) {
				t.Errorf("the delivered message lacks %q:\n%s", want, got)
			}
		}
	}
	t.Run("Send", func(t *testing.T) {
		e.Subject = realmta.Subject(t)
		if err := jwemail.Send(context.Background(), s.Mailer(t), e); err != nil {
			t.Fatal(err)
		}
		check(t, s.WaitDelivered(t, s.User2, e.Subject))
	})
	t.Run("NewPool", func(t *testing.T) {
		p, err := jwemail.NewPool(s.StartTLS, 1, netsmtp.PlainAuth("", s.User, s.Pass, "127.0.0.1"), s.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		e.Subject = realmta.Subject(t)
		if err := p.Send(e, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		check(t, s.WaitDelivered(t, s.User2, e.Subject))
	})
}
