package pbmailer_test

import (
	"errors"
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/mails"
	_ "github.com/pocketbase/pocketbase/migrations" // the system collections, as pocketbase.New() registers them
	"github.com/pocketbase/pocketbase/tools/mailer"

	"github.com/portwise/portwise/examples/adapters/internal/realmta"
	"github.com/portwise/portwise/examples/adapters/pbmailer"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

const subject = "Votre facture — été"

func message() *mailer.Message {
	return &mailer.Message{
		From:    mail.Address{Name: "Acme Shop", Address: "shop@example.com"},
		To:      []mail.Address{{Name: "Dörte", Address: "dorte@example.com"}},
		Cc:      []mail.Address{{Address: "accounts@example.com"}},
		Bcc:     []mail.Address{{Address: "audit@example.com"}},
		Subject: subject,
		Text:    "Your invoice is attached.\n.a line starting with a dot\n",
		HTML:    "<p>Your invoice is attached.</p>",
		Headers: map[string]string{"X-Invoice": "2026-0042"},
		Attachments: map[string]io.Reader{
			"invoice.csv": strings.NewReader(strings.Repeat("item,price\n", 100)),
		},
	}
}

func newMailer(t *testing.T, srv *submittest.Server, cands ...tlsmode.Candidate) *pbmailer.Mailer {
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass"), cands...), Host: "127.0.0.1"}
	t.Cleanup(func() { m.Close() })
	return &pbmailer.Mailer{Mailer: m, Timeout: 10 * time.Second}
}

func TestMailerSendsAPocketBaseMessage(t *testing.T) {
	srv := submittest.NewServer(t)
	if err := newMailer(t, srv).Send(message()); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()[0]
	if got.From != "shop@example.com" || !slices.Equal(got.To, []string{"dorte@example.com", "accounts@example.com", "audit@example.com"}) {
		t.Errorf("envelope %s -> %v", got.From, got.To)
	}
	if !got.TLS || got.AuthUser != "user" {
		t.Errorf("TLS %v, user %q", got.TLS, got.AuthUser)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(got.Data)))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	s, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || s != subject {
		t.Errorf("Subject %q decodes to %q (%v)", h.Get("Subject"), s, err)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || *from[0] != (mail.Address{Name: "Acme Shop", Address: "shop@example.com"}) {
		t.Errorf("From %q: %v %v", h.Get("From"), from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || *to[0] != (mail.Address{Name: "Dörte", Address: "dorte@example.com"}) {
		t.Errorf("To %q: %v %v", h.Get("To"), to, err)
	}
	if h.Get("Cc") != "accounts@example.com" || h.Get("X-Invoice") != "2026-0042" || h.Get("Date") == "" {
		t.Errorf("Cc %q, X-Invoice %q, Date %q", h.Get("Cc"), h.Get("X-Invoice"), h.Get("Date"))
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID %q", id)
	}
	data := string(got.Data)
	for _, want := range []string{"\r\n.a line starting with a dot", "text/html", `filename="invoice.csv"`, "text/csv"} {
		if !strings.Contains(data, want) {
			t.Errorf("message lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(data, "audit@example.com") {
		t.Error("the Bcc address is in the message")
	}
}

// newApp is a PocketBase app in a temporary directory, with its system
// collections (users among them) migrated.
func newApp(t *testing.T) core.App {
	t.Helper()
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: t.TempDir()})
	if err := app.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.ResetBootstrapState() })
	app.Settings().Meta.SenderName = "Acme"
	app.Settings().Meta.SenderAddress = "noreply@example.com"
	return app
}

func newUser(t *testing.T, app core.App, addr string) *core.Record {
	t.Helper()
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	u := core.NewRecord(users)
	u.SetEmail(addr)
	u.SetPassword("correct horse battery staple")
	if err := app.Save(u); err != nil {
		t.Fatal(err)
	}
	return u
}

// The one change in a PocketBase program, and PocketBase's own
// password-reset e-mail goes through portwise: neither sendmail (SMTP off,
// the default) nor PocketBase's net/smtp client (SMTP on) runs.
func TestBindSendsPocketBaseMailThroughPortwise(t *testing.T) {
	srv := submittest.NewServer(t)
	for _, smtpOn := range []bool{false, true} {
		app := newApp(t)
		if smtpOn {
			// Where PocketBase's own client would go: nothing listens.
			app.Settings().SMTP = core.SMTPConfig{Enabled: true, Host: "127.0.0.1", Port: 1}
		}
		pbmailer.Bind(app, newMailer(t, srv))

		before := len(srv.Messages())
		u := newUser(t, app, "dorte@example.com")
		if err := mails.SendRecordPasswordReset(app, u); err != nil {
			t.Fatalf("SMTP settings on: %v: %v", smtpOn, err)
		}
		if err := app.NewMailClient().Send(message()); err != nil {
			t.Fatalf("SMTP settings on: %v: %v", smtpOn, err)
		}
		got := srv.Messages()[before:]
		if len(got) != 2 {
			t.Fatalf("SMTP settings on: %v: %d messages, want 2", smtpOn, len(got))
		}
		reset := got[0]
		if reset.From != "noreply@example.com" || !slices.Equal(reset.To, []string{"dorte@example.com"}) || !reset.TLS {
			t.Errorf("password reset: envelope %s -> %v, TLS %v", reset.From, reset.To, reset.TLS)
		}
		if data := string(reset.Data); !strings.Contains(data, "Reset") || !strings.Contains(data, "text/html") {
			t.Errorf("password reset:\n%s", data)
		}
		if !strings.Contains(string(got[1].Data), "X-Invoice: 2026-0042") {
			t.Errorf("custom message:\n%s", got[1].Data)
		}
	}
}

func TestPortwiseErrorsComeBackThroughPocketBase(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{"accounts@example.com": "550 5.1.1 no such user"}})
	t.Run("refused recipient", func(t *testing.T) {
		app := newApp(t)
		pbmailer.Bind(app, newMailer(t, srv))
		err := app.NewMailClient().Send(message())
		var se *submit.SendError
		if !errors.As(err, &se) || len(se.Rejected) != 1 || se.Rejected[0].Addr != "accounts@example.com" {
			t.Fatalf("err = %v, want a *submit.SendError for accounts@example.com", err)
		}
	})
	t.Run("outcome unknown is not sent again", func(t *testing.T) {
		app := newApp(t)
		pbmailer.Bind(app, newMailer(t, srv, srv.Listen(tlsmode.StartTLS, submittest.DropAfterDot)))
		before := len(srv.Messages())
		msg := message()
		msg.Cc = nil
		if err := app.NewMailClient().Send(msg); !errors.Is(err, submit.ErrOutcomeUnknown) {
			t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
		}
		if n := len(srv.Messages()) - before; n != 1 {
			t.Errorf("the server got the message %d times, want once", n)
		}
	})
}

func TestHeaderInjectionIsRefusedBeforeConnecting(t *testing.T) {
	srv := submittest.NewServer(t)
	m := newMailer(t, srv)
	for _, tt := range []struct {
		name   string
		change func(m *mailer.Message)
	}{
		{"Subject with CRLF", func(m *mailer.Message) { m.Subject = "Hi\r\nBcc: evil@example.net" }},
		{"Subject with a bare CR", func(m *mailer.Message) { m.Subject = "Hi\rBcc: evil@example.net" }},
		{"From name with LF", func(m *mailer.Message) { m.From.Name = "Acme\nBcc: evil@example.net" }},
		{"To address with a bare CR", func(m *mailer.Message) { m.To[0].Address = "dorte@example.com\rBcc: evil@example.net" }},
		{"Bcc name with NUL", func(m *mailer.Message) { m.Bcc[0].Name = "a\x00b" }},
		{"header value with LF", func(m *mailer.Message) { m.Headers["X-Invoice"] = "1\nBcc: evil@example.net" }},
		{"header name with CRLF", func(m *mailer.Message) { m.Headers["X-A\r\nBcc"] = "evil@example.net" }},
		{"header name with a colon", func(m *mailer.Message) { m.Headers["Bcc: evil@example.net\r\nX"] = "y" }},
		{"attachment name", func(m *mailer.Message) {
			m.Attachments = map[string]io.Reader{"a.csv>\r\nBcc: evil@example.net": strings.NewReader("x")}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := message()
			tt.change(msg)
			if err := m.Send(msg); !errors.Is(err, pbmailer.ErrBadHeader) {
				t.Fatalf("err = %v, want ErrBadHeader", err)
			}
		})
	}
	if n := len(srv.Conns()); n != 0 {
		t.Errorf("%d connections made for refused messages", n)
	}
}

func TestInteropPostfix(t *testing.T) {
	s := realmta.Require(t)
	app := newApp(t)
	pbmailer.Bind(app, &pbmailer.Mailer{Mailer: s.Mailer(t)})
	msg := &mailer.Message{
		From:    mail.Address{Name: "Alice", Address: s.User},
		To:      []mail.Address{{Address: s.User2}},
		Subject: realmta.Subject(t),
		Text:    "Sent by PocketBase through portwise.\n.dot\n",
		HTML:    "<p>Sent by PocketBase through portwise.</p>",
		Attachments: map[string]io.Reader{
			"data.csv": strings.NewReader("a,b\n1,2\n"),
		},
	}
	if err := app.NewMailClient().Send(msg); err != nil {
		t.Fatal(err)
	}
	got := string(s.WaitDelivered(t, s.User2, msg.Subject))
	for _, want := range []string{"From: Alice <" + s.User + ">", "\n.dot", `filename="data.csv"`, "text/html"} {
		if !strings.Contains(got, want) {
			t.Errorf("the delivered message lacks %q:\n%s", want, got)
		}
	}
}
