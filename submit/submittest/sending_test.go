package submittest_test

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

func TestRejectRecipientsRefusesOnlyThoseListed(t *testing.T) {
	s := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{
		"nobody@example.org": "550 5.1.1 no such user",
		"full@example.org":   "452 4.2.2 mailbox full",
		"odd@example.org":    "no code here",
	}})
	c, err := smtp.DialTLS(s.Addr(s.Implicit), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rcpt    string
		code    int
		enhCode smtp.EnhancedCode
		text    string
	}{
		{"b@example.org", 0, smtp.EnhancedCode{}, ""},
		{"nobody@example.org", 550, smtp.EnhancedCode{5, 1, 1}, "no such user"},
		{"full@example.org", 452, smtp.EnhancedCode{4, 2, 2}, "mailbox full"},
		{"odd@example.org", 550, smtp.EnhancedCode{5, 0, 0}, "no code here"},
	}
	for _, tt := range tests {
		err := c.Rcpt(tt.rcpt, nil)
		var se *smtp.SMTPError
		switch {
		case tt.code == 0 && err != nil:
			t.Errorf("RCPT %s: %v, want accepted", tt.rcpt, err)
		case tt.code != 0 && (!errors.As(err, &se) || se.Code != tt.code || se.EnhancedCode != tt.enhCode || se.Message != tt.text):
			t.Errorf("RCPT %s: %#v, want %d %v %q", tt.rcpt, err, tt.code, tt.enhCode, tt.text)
		}
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	wc.Write([]byte(msg))
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	m := s.Messages()
	if len(m) != 1 || strings.Join(m[0].To, ",") != "b@example.org" || len(m[0].RcptOptions) != 1 {
		t.Errorf("messages = %+v, want one to b@example.org only", m)
	}
}

func TestFinalReplyAnnouncesTheQueueID(t *testing.T) {
	s := submittest.NewServer(t)
	c, err := smtp.DialTLS(s.Addr(s.Implicit), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ids []string
	for range 2 {
		if err := c.Mail("a@example.org", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("b@example.org", nil); err != nil {
			t.Fatal(err)
		}
		wc, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		wc.Write([]byte(msg))
		resp, err := wc.CloseWithResponse()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.StatusText)
	}
	m := s.Messages()
	for i, got := range ids {
		if want := "2.0.0 OK: queued as " + m[i].QueueID; got != want || m[i].QueueID == "" {
			t.Errorf("reply %d = %q, want %q", i, got, want)
		}
	}
	if m[0].QueueID == m[1].QueueID {
		t.Errorf("two messages share queue id %s", m[0].QueueID)
	}
	if recs := s.Conns(); recs[0].Messages != 2 {
		t.Errorf("ConnRecord.Messages = %d, want 2", recs[0].Messages)
	}
}

func TestMaxMessagesPerConnAnswers421AndCloses(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.ListenWith(tlsmode.Implicit, submittest.Options{MaxMessagesPerConn: 1})
	c, err := smtp.DialTLS(s.Addr(addr), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("a@example.org", []string{"b@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	err = c.Mail("a@example.org", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 421 {
		t.Fatalf("second MAIL: %v, want 421", err)
	}
	waitClosed(t, s, s.Addr(addr))
}

func TestIdleTimeoutEndsTheSessionWith421(t *testing.T) {
	s := submittest.NewServer(t)
	addr := s.ListenWith(tlsmode.Implicit, submittest.Options{IdleTimeout: 100 * time.Millisecond})
	c, err := smtp.DialTLS(s.Addr(addr), s.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, s, s.Addr(addr))
	err = c.Noop()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 421 || se.EnhancedCode != (smtp.EnhancedCode{4, 4, 2}) {
		t.Errorf("NOOP after the idle timeout: %v, want the 421 4.4.2 the server left", err)
	}
}

// waitClosed waits until the server has closed its connection on addr.
func waitClosed(t *testing.T, s *submittest.Server, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range s.Conns() {
			if r.Addr == addr && r.Closed {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the connection on %s is still open", addr)
}

func TestCACertPEMIsThePoolsCA(t *testing.T) {
	s := submittest.NewServer(t)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CACertPEM is not a PEM certificate")
	}
	if !pool.Equal(s.CertPool()) {
		t.Error("CACertPEM differs from the CA in CertPool")
	}
	other := submittest.NewServer(t)
	if string(other.CACertPEM()) == string(s.CACertPEM()) {
		t.Error("two servers share a CA")
	}
}

func TestMaxSessionsGreetsTheExtraOneWith421(t *testing.T) {
	for _, mode := range []tlsmode.Mode{tlsmode.StartTLS, tlsmode.Implicit} {
		s := submittest.NewServer(t)
		c := s.ListenWith(mode, submittest.Options{MaxSessions: 2})
		d := s.Dialer(submit.PlainAuth("", "user", "pass"), c)
		var open []*submit.Client
		for range 2 {
			cl, err := d.Dial(context.Background(), "127.0.0.1")
			if err != nil {
				t.Fatalf("%v: session within the cap: %v", mode, err)
			}
			open = append(open, cl)
		}
		_, err := d.Dial(context.Background(), "127.0.0.1")
		var re *submit.Reply
		if !errors.As(err, &re) || re.Code != 421 || re.Enhanced != "4.7.0" || !submit.IsTemporary(err) {
			t.Fatalf("%v: third session: %v; want a temporary 421 4.7.0 greeting", mode, err)
		}
		open[0].Quit()
		deadline := time.Now().Add(5 * time.Second)
		for {
			cl, err := d.Dial(context.Background(), "127.0.0.1")
			if err == nil {
				cl.Quit()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: a freed session was not given back: %v", mode, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		open[1].Quit()
	}
}

func TestFailEveryRefusesSomeMailTemporarily(t *testing.T) {
	s := submittest.NewServer(t, submittest.Options{FailEvery: 3})
	cl, err := s.Dialer(submit.PlainAuth("", "user", "pass")).Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Quit()
	var refused []int
	for i := range 6 {
		err := cl.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader("x\r\n"))
		if err != nil {
			if !submit.IsTemporary(err) || !strings.Contains(err.Error(), "451 4.3.0") {
				t.Fatalf("send %d: %v; want a temporary 451", i, err)
			}
			refused = append(refused, i)
		}
	}
	if len(refused) != 2 || refused[0] != 2 || refused[1] != 5 {
		t.Errorf("refused sends %v; want the 3rd and the 6th", refused)
	}
	if n := len(s.Messages()); n != 4 {
		t.Errorf("%d messages stored; want 4", n)
	}
}

// TestCommandsNameBDATAndDATA: under TLS, where Commands are rebuilt from
// the session, a message carried by BDAT chunks is recorded as "BDAT" and
// one carried by DATA as "DATA".
func TestCommandsNameBDATAndDATA(t *testing.T) {
	s := submittest.NewServer(t)
	d := &submit.Dialer{
		Candidates: []tlsmode.Candidate{{Port: s.Implicit.Port, Mode: tlsmode.Implicit}},
		TLSConfig:  s.ClientTLSConfig(),
	}
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	for _, opts := range []*submit.SendOptions{nil, {NoChunking: true}} {
		if _, err := c.SendWith(context.Background(), "a@example.org", []string{"b@example.org"}, strings.NewReader(msg), opts); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, rec := range s.Conns() {
		for _, cmd := range rec.Commands {
			if cmd == "BDAT" || cmd == "DATA" {
				got = append(got, cmd)
			}
		}
	}
	if want := []string{"BDAT", "DATA"}; !slices.Equal(got, want) {
		t.Errorf("Commands name the messages %q; want %q", got, want)
	}
	if n := len(s.Messages()); n != 2 {
		t.Errorf("%d messages stored; want 2", n)
	}
}
