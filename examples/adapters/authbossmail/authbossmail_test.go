package authbossmail_test

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/volatiletech/authboss/v3"

	"github.com/portwise/portwise/examples/adapters/authbossmail"
	"github.com/portwise/portwise/examples/adapters/internal/realmta"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// recoverEmail is what Authboss's recover module sends, with names, a Cc,
// a Bcc and text that needs encoding.
func recoverEmail() authboss.Email {
	return authboss.Email{
		To:       []string{"dorte@example.com"},
		ToNames:  []string{"Dörte Müller"},
		Cc:       []string{"support@example.com"},
		Bcc:      []string{"audit@example.com"},
		From:     "noreply@example.com",
		FromName: "Example, Inc.",
		ReplyTo:  "help@example.com",
		Subject:  "Réinitialisez votre mot de passe — " + strings.Repeat("très ", 20) + "long",
		TextBody: "Bonjour Dörte,\n.a line starting with a dot\n" + strings.Repeat("x", 120) + "\n",
		HTMLBody: `<p>Bonjour Dörte, <a href="https://example.com/recover?token=abc=">recover</a></p>`,
	}
}

// parse reads a message back as a mail client would: header words decoded
// and bodies out of quoted-printable.
func parse(t *testing.T, data []byte) (h mail.Header, parts map[string]string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	typ, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	parts = map[string]string{}
	read := func(ctype, cte string, r io.Reader) {
		if cte != "quoted-printable" {
			t.Errorf("%s in %q, want quoted-printable", ctype, cte)
		}
		b, err := io.ReadAll(quotedprintable.NewReader(r))
		if err != nil {
			t.Fatal(err)
		}
		parts[strings.SplitN(ctype, ";", 2)[0]] = string(b)
	}
	if typ != "multipart/alternative" {
		read(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		return msg.Header, parts
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		read(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
	}
	return msg.Header, parts
}

func TestComposeBuildsAMessageMailClientsRead(t *testing.T) {
	e := recoverEmail()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	m, err := authbossmail.Compose(e, now)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "noreply@example.com" || !slices.Equal(m.To, []string{"dorte@example.com", "support@example.com", "audit@example.com"}) {
		t.Errorf("envelope %s -> %v", m.From, m.To)
	}
	data := string(m.Data)
	for i, line := range strings.Split(data, "\r\n") {
		if len(line) > 78 || strings.Contains(line, "\n") || strings.Contains(line, "\r") {
			t.Errorf("line %d is %d bytes or holds a bare line ending: %q", i+1, len(line), line)
		}
	}
	if strings.Contains(data, "audit@example.com") || strings.Contains(strings.ToLower(data), "bcc:") {
		t.Error("the Bcc address is in the message")
	}
	h, parts := parse(t, m.Data)
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(h.Get("Subject"))
	if subject != e.Subject {
		t.Errorf("Subject decodes to %q, want %q", subject, e.Subject)
	}
	for field, want := range map[string]mail.Address{
		"From": {Name: "Example, Inc.", Address: "noreply@example.com"}, "To": {Name: "Dörte Müller", Address: "dorte@example.com"},
		"Cc": {Address: "support@example.com"}, "Reply-To": {Address: "help@example.com"},
	} {
		list, err := h.AddressList(field)
		if err != nil || len(list) != 1 || *list[0] != want {
			t.Errorf("%s: %q (%v, %v), want %v", field, h.Get(field), list, err, want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date %q: %v %v", h.Get("Date"), d, err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID %q", id)
	}
	if parts["text/plain"] != crlf(e.TextBody) || parts["text/html"] != e.HTMLBody {
		t.Errorf("bodies decode to %q", parts)
	}
}

// crlf is text as a mail client reads it: quoted-printable text has CRLF
// line ends, its canonical form.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func TestComposeOneBody(t *testing.T) {
	for _, tt := range []struct {
		name, typ string
		e         authboss.Email
	}{
		{"text", "text/plain", authboss.Email{From: "a@example.com", To: []string{"b@example.com"}, TextBody: "Hi.\n"}},
		{"html", "text/html", authboss.Email{From: "a@example.com", To: []string{"b@example.com"}, HTMLBody: "<p>Hi.</p>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := authbossmail.Compose(tt.e, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			h, parts := parse(t, m.Data)
			if !strings.HasPrefix(h.Get("Content-Type"), tt.typ) || parts[tt.typ] != crlf(tt.e.TextBody+tt.e.HTMLBody) {
				t.Errorf("Content-Type %q, parts %q", h.Get("Content-Type"), parts)
			}
		})
	}
}

func TestComposeRefuses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		change  func(e *authboss.Email)
		errIs   error
		errText string
	}{
		{"Subject with CRLF", func(e *authboss.Email) { e.Subject = "Hi\r\nBcc: evil@example.net" }, authbossmail.ErrBadHeader, ""},
		{"FromName with a bare CR", func(e *authboss.Email) { e.FromName = "App\rBcc: evil@example.net" }, authbossmail.ErrBadHeader, ""},
		{"To name with LF", func(e *authboss.Email) { e.ToNames = []string{"D\nBcc: evil@example.net"} }, authbossmail.ErrBadHeader, ""},
		{"Cc address with LF", func(e *authboss.Email) { e.Cc = []string{"s@example.com\nBcc: evil@example.net"} }, authbossmail.ErrBadHeader, ""},
		{"ReplyToName with NUL", func(e *authboss.Email) { e.ReplyToName = "a\x00b" }, authbossmail.ErrBadHeader, ""},
		{"names not parallel to addresses", func(e *authboss.Email) { e.ToNames = []string{"a", "b"} }, nil, "names must be none or one per address"},
		{"no body", func(e *authboss.Email) { e.TextBody, e.HTMLBody = "", "" }, nil, "neither a text nor an HTML body"},
		{"no recipient", func(e *authboss.Email) { e.To, e.ToNames, e.Cc, e.Bcc = nil, nil, nil, nil }, nil, "no recipient"},
		{"no From", func(e *authboss.Email) { e.From = "" }, nil, "no From"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := recoverEmail()
			tt.change(&e)
			_, err := authbossmail.Compose(e, time.Now())
			if err == nil || (tt.errIs != nil && !errors.Is(err, tt.errIs)) || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("err = %v, want %v %q", err, tt.errIs, tt.errText)
			}
		})
	}
}

func TestMailerSendsThroughPortwise(t *testing.T) {
	srv := submittest.NewServer(t)
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}
	defer m.Close()
	var ab authboss.Authboss
	ab.Config.Core.Mailer = &authbossmail.Mailer{Mailer: m}

	// Authboss sends from a goroutine with the request's context, which is
	// cancelled once the handler has returned: the send must not be.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := recoverEmail()
	if err := ab.Config.Core.Mailer.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()[0]
	if got.From != "noreply@example.com" || !slices.Equal(got.To, []string{"dorte@example.com", "support@example.com", "audit@example.com"}) {
		t.Errorf("envelope %s -> %v", got.From, got.To)
	}
	if !got.TLS || got.AuthUser != "user" {
		t.Errorf("TLS %v, user %q", got.TLS, got.AuthUser)
	}
	h, parts := parse(t, got.Data)
	if parts["text/plain"] != crlf(e.TextBody) || parts["text/html"] != e.HTMLBody || h.Get("Message-ID") == "" {
		t.Errorf("stored message:\n%s", got.Data)
	}
	if strings.Contains(string(got.Data), "audit@example.com") {
		t.Error("the Bcc address is in the message")
	}
}

func TestMailerKeepsPortwiseErrors(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{"support@example.com": "550 5.1.1 no such user"}})
	t.Run("refused recipient", func(t *testing.T) {
		m := &authbossmail.Mailer{Mailer: &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}}
		defer m.Mailer.Close()
		err := m.Send(context.Background(), recoverEmail())
		var se *submit.SendError
		if !errors.As(err, &se) || len(se.Rejected) != 1 || se.Rejected[0].Addr != "support@example.com" {
			t.Fatalf("err = %v, want a *submit.SendError for support@example.com", err)
		}
	})
	t.Run("outcome unknown is not sent again", func(t *testing.T) {
		drop := srv.Listen(tlsmode.StartTLS, submittest.DropAfterDot)
		before := len(srv.Messages())
		m := &authbossmail.Mailer{Mailer: &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass"), drop), Host: "127.0.0.1"}}
		defer m.Mailer.Close()
		e := recoverEmail()
		e.Cc = nil
		if err := m.Send(context.Background(), e); !errors.Is(err, submit.ErrOutcomeUnknown) {
			t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
		}
		if n := len(srv.Messages()) - before; n != 1 {
			t.Errorf("the server got the message %d times, want once", n)
		}
	})
	t.Run("header injection: nothing sent", func(t *testing.T) {
		before := len(srv.Conns())
		m := &authbossmail.Mailer{Mailer: &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}}
		defer m.Mailer.Close()
		e := recoverEmail()
		e.Subject = "Hi\r\nBcc: evil@example.net"
		if err := m.Send(context.Background(), e); !errors.Is(err, authbossmail.ErrBadHeader) {
			t.Fatalf("err = %v, want ErrBadHeader", err)
		}
		if n := len(srv.Conns()) - before; n != 0 {
			t.Errorf("%d connections made", n)
		}
	})
}

func TestInteropPostfix(t *testing.T) {
	s := realmta.Require(t)
	m := &authbossmail.Mailer{Mailer: s.Mailer(t)}
	e := authboss.Email{
		To: []string{s.User2}, ToNames: []string{"Bob"},
		From: s.User, FromName: "Alice",
		Subject:  realmta.Subject(t),
		TextBody: "Confirm your account.\n.dot\n",
		HTMLBody: "<p>Confirm your account.</p>",
	}
	if err := m.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	got := s.WaitDelivered(t, s.User2, e.Subject)
	h, parts := parse(t, got) // the maildir has LF line ends
	if h.Get("From") != `"Alice" <`+s.User+">" || strings.ReplaceAll(parts["text/plain"], "\r\n", "\n") != e.TextBody || parts["text/html"] != e.HTMLBody {
		t.Errorf("delivered:\n%s", got)
	}
}
