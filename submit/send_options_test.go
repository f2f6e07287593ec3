package submit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// dialListener dials one listener of srv (added with ListenWith, or one of
// its defaults) and closes the client at the end of the test.
func dialListener(t *testing.T, srv *submittest.Server, addr tlsmode.Candidate, mode tlsmode.Mode) *submit.Client {
	t.Helper()
	var auth submit.Auth
	if mode != tlsmode.Plaintext {
		auth = submit.PlainAuth("", "user", "pass")
	}
	c, err := dialerFor(srv, auth, cand(srv, addr, mode)).Dial(context.Background(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

// commandsOn returns every command the server saw on addr.
func commandsOn(srv *submittest.Server, addr string) []string {
	var cmds []string
	for _, r := range srv.Conns() {
		if r.Addr == addr {
			cmds = append(cmds, r.Commands...)
		}
	}
	return cmds
}

func hasPrefix(lines []string, prefix string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

func TestSendWithReportsSizeRecipientsAndQueueID(t *testing.T) {
	srv := submittest.NewServer(t)
	c := dialListener(t, srv, srv.Implicit, tlsmode.Implicit)
	// Bare LFs become CRLF: Size counts the message as SIZE= declares it
	// and the server counts it (RFC 1870), without DATA's dot-stuffing.
	msg := "Subject: x\n\n.hidden\nbody"
	res, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com", "c@example.com"}, strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()[0]
	want := "Subject: x\r\n\r\n.hidden\r\nbody\r\n"
	if res.Size != int64(len(want)) || res.Size != got.Size || string(got.Data) != want {
		t.Errorf("Size = %d, server received %d bytes; want %d (%q)", res.Size, got.Size, len(want), want)
	}
	if res.QueueID == "" || res.QueueID != got.QueueID {
		t.Errorf("QueueID = %q, server says %q", res.QueueID, got.QueueID)
	}
	if want := "250 2.0.0 OK: queued as " + got.QueueID; res.Reply != want {
		t.Errorf("Reply = %q, want %q", res.Reply, want)
	}
	if !slices.Equal(res.Accepted, []string{"b@example.com", "c@example.com"}) || len(res.Rejected) != 0 {
		t.Errorf("Accepted %v Rejected %v", res.Accepted, res.Rejected)
	}
}

func TestSendWithRefusedRecipients(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{
		"nobody@example.com": "550 5.1.1 no such user",
		"full@example.com":   "452 4.2.2 mailbox full",
	}})
	tests := []struct {
		name         string
		to           []string
		wantAccepted []string
		wantRejected []string
		wantCodes    []int
	}{
		{"some refused", []string{"a@example.com", "nobody@example.com", "b@example.com", "full@example.com"},
			[]string{"a@example.com", "b@example.com"}, []string{"nobody@example.com", "full@example.com"}, []int{550, 452}},
		{"all refused", []string{"nobody@example.com", "full@example.com"},
			nil, []string{"nobody@example.com", "full@example.com"}, []int{550, 452}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := srv.Listen(tlsmode.Implicit)
			c := dialListener(t, srv, addr, tlsmode.Implicit)
			res, err := c.SendWith(context.Background(), "me@example.com", tt.to, strings.NewReader(testMsg), nil)
			var se *submit.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SendError", err)
			}
			if se.Accepted != len(tt.wantAccepted) || !slices.Equal(res.Accepted, tt.wantAccepted) {
				t.Errorf("accepted: error says %d, result %v; want %v", se.Accepted, res.Accepted, tt.wantAccepted)
			}
			for i, r := range se.Rejected {
				if r.Addr != tt.wantRejected[i] || r.Reply.Code != tt.wantCodes[i] {
					t.Errorf("rejected[%d] = %s %d, want %s %d", i, r.Addr, r.Reply.Code, tt.wantRejected[i], tt.wantCodes[i])
				}
			}
			if len(se.Rejected) != len(tt.wantRejected) || !slices.Equal(res.Rejected, se.Rejected) {
				t.Errorf("rejected = %v (result %v), want %v", se.Rejected, res.Rejected, tt.wantRejected)
			}
			var smtpErr *submit.Reply
			if !errors.As(err, &smtpErr) || smtpErr.Code != 550 || !strings.Contains(err.Error(), "nobody@example.com: 550 5.1.1 no such user") {
				t.Errorf("error does not carry the refusal: %v", err)
			}
			var msgs []submittest.Message
			for _, m := range srv.Messages() {
				if m.Addr == srv.Addr(addr) {
					msgs = append(msgs, m)
				}
			}
			if tt.wantAccepted == nil {
				if len(msgs) != 0 || hasPrefix(commandsOn(srv, srv.Addr(addr)), "DATA") || res.QueueID != "" {
					t.Errorf("nothing should be sent: messages %v, commands %v", msgs, commandsOn(srv, srv.Addr(addr)))
				}
			} else if len(msgs) != 1 || !slices.Equal(msgs[0].To, tt.wantAccepted) || res.QueueID != msgs[0].QueueID {
				t.Errorf("messages = %+v, want one to %v", msgs, tt.wantAccepted)
			}
			// The session is clean for the next message.
			if err := c.Send(context.Background(), "me@example.com", []string{"a@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Errorf("next send: %v", err)
			}
		})
	}
}

func TestSendWithOptionsNeedTheirExtension(t *testing.T) {
	srv := submittest.NewServer(t)
	full := srv.ListenWith(tlsmode.Implicit, submittest.Options{EnableDSN: true, EnableREQUIRETLS: true, EnableSMTPUTF8: true, MaxMessageBytes: 1000})
	bare := srv.ListenWith(tlsmode.Implicit, submittest.Options{MaxMessageBytes: 1000})
	relay := srv.ListenWith(tlsmode.Plaintext, submittest.Options{EnableREQUIRETLS: true})
	dsn := &submit.DSNOptions{
		Return:     "HDRS",
		EnvelopeID: "order+42=ok",
		Notify:     []string{"FAILURE", "DELAY"},
		OriginalRecipients: map[string]string{
			"b@example.com":   "sales@example.com",
			"jörg@example.de": "jörg+x@example.de",
		},
	}
	big := strings.Repeat("x", 900) + "\r\n" + strings.Repeat("y", 900) + "\r\n"
	tests := []struct {
		name    string
		addr    tlsmode.Candidate
		mode    tlsmode.Mode
		to      []string
		msg     io.Reader
		opts    *submit.SendOptions
		wantErr error // nil: delivered
		check   func(t *testing.T, m submittest.Message)
	}{
		{"DSN", full, tlsmode.Implicit, []string{"b@example.com", "jörg@example.de"}, strings.NewReader(testMsg), &submit.SendOptions{DSN: dsn}, nil,
			func(t *testing.T, m submittest.Message) {
				if m.MailOptions.Return != smtp.DSNReturnHeaders || m.MailOptions.EnvelopeID != "order+42=ok" {
					t.Errorf("MAIL options = %+v", m.MailOptions)
				}
				want := []struct{ typ, addr string }{{"RFC822", "sales@example.com"}, {"UTF-8", "jörg+x@example.de"}}
				for i, ro := range m.RcptOptions {
					if !slices.Equal(ro.Notify, []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed}) ||
						string(ro.OriginalRecipientType) != want[i].typ || ro.OriginalRecipient != want[i].addr {
						t.Errorf("RCPT %d options = %+v, want NOTIFY=FAILURE,DELAY ORCPT=%v", i, ro, want[i])
					}
				}
			}},
		{"DSN not advertised", bare, tlsmode.Implicit, []string{"b@example.com"}, strings.NewReader(testMsg), &submit.SendOptions{DSN: &submit.DSNOptions{Notify: []string{"NEVER"}}}, submit.ErrExtensionMissing, nil},
		{"REQUIRETLS", full, tlsmode.Implicit, []string{"b@example.com"}, strings.NewReader(testMsg), &submit.SendOptions{RequireTLS: true}, nil,
			func(t *testing.T, m submittest.Message) {
				if !m.MailOptions.RequireTLS {
					t.Error("REQUIRETLS not declared")
				}
			}},
		{"REQUIRETLS not advertised", bare, tlsmode.Implicit, []string{"b@example.com"}, strings.NewReader(testMsg), &submit.SendOptions{RequireTLS: true}, submit.ErrExtensionMissing, nil},
		{"REQUIRETLS on a relay without TLS", relay, tlsmode.Plaintext, []string{"b@example.com"}, strings.NewReader(testMsg), &submit.SendOptions{RequireTLS: true}, submit.ErrExtensionMissing, nil},
		{"SMTPUTF8", full, tlsmode.Implicit, []string{"jörg@example.de"}, strings.NewReader(testMsg), nil, nil,
			func(t *testing.T, m submittest.Message) {
				if !m.MailOptions.UTF8 || m.To[0] != "jörg@example.de" {
					t.Errorf("UTF8 = %v, To = %v", m.MailOptions.UTF8, m.To)
				}
			}},
		{"SMTPUTF8 not advertised", bare, tlsmode.Implicit, []string{"jörg@example.de"}, strings.NewReader(testMsg), nil, submit.ErrExtensionMissing, nil},
		{"SIZE declared", bare, tlsmode.Implicit, []string{"b@example.com"}, strings.NewReader(testMsg), nil, nil,
			func(t *testing.T, m submittest.Message) {
				if m.MailOptions.Size != int64(len(testMsg)) {
					t.Errorf("SIZE = %d, want %d", m.MailOptions.Size, len(testMsg))
				}
			}},
		{"SIZE over the limit", bare, tlsmode.Implicit, []string{"b@example.com"}, bytes.NewReader([]byte(big)), nil, submit.ErrMessageTooLarge, nil},
		{"SIZE from the options", bare, tlsmode.Implicit, []string{"b@example.com"}, io.MultiReader(strings.NewReader(big)), &submit.SendOptions{Size: int64(len(big))}, submit.ErrMessageTooLarge, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialListener(t, srv, tt.addr, tt.mode)
			before := len(srv.Messages())
			nMail := strings.Count(strings.Join(commandsOn(srv, srv.Addr(tt.addr)), "\n"), "MAIL FROM")
			_, err := c.SendWith(context.Background(), "a@example.com", tt.to, tt.msg, tt.opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if n := strings.Count(strings.Join(commandsOn(srv, srv.Addr(tt.addr)), "\n"), "MAIL FROM"); n != nMail {
					t.Errorf("MAIL FROM was sent after all: %v", commandsOn(srv, srv.Addr(tt.addr)))
				}
				if submit.IsTemporary(err) {
					t.Errorf("IsTemporary(%v) = true", err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != before+1 {
				t.Fatalf("%d new messages, want 1", len(msgs)-before)
			}
			tt.check(t, msgs[len(msgs)-1])
		})
	}
}

func TestSendOfUnknownSizeOverTheLimitGetsTheServers552(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{MaxMessageBytes: 100})
	c := dialListener(t, srv, addr, tlsmode.Implicit)
	body := io.MultiReader(strings.NewReader(strings.Repeat("z", 500) + "\r\n")) // size unknown to the client
	_, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, body, nil)
	var se *submit.Reply
	if !errors.As(err, &se) || se.Code != 552 {
		t.Fatalf("err = %v, want the server's 552", err)
	}
	if errors.Is(err, submit.ErrOutcomeUnknown) {
		t.Error("a 552 is the server's answer, not an unknown outcome")
	}
}

func TestSendWithRefusesBadOptionsBeforeMAIL(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{EnableDSN: true})
	tests := []struct {
		name string
		to   []string
		dsn  submit.DSNOptions
	}{
		{"bad RET", []string{"b@example.com"}, submit.DSNOptions{Return: "ALL"}},
		{"ENVID not ASCII", []string{"b@example.com"}, submit.DSNOptions{EnvelopeID: "commande-é"}},
		{"ENVID injection", []string{"b@example.com"}, submit.DSNOptions{EnvelopeID: "x\r\nRSET"}},
		{"ENVID too long", []string{"b@example.com"}, submit.DSNOptions{EnvelopeID: strings.Repeat("i", 101)}},
		{"NEVER combined", []string{"b@example.com"}, submit.DSNOptions{Notify: []string{"NEVER", "FAILURE"}}},
		{"unknown NOTIFY", []string{"b@example.com"}, submit.DSNOptions{Notify: []string{"ALWAYS"}}},
		{"ORCPT for a stranger", []string{"b@example.com"}, submit.DSNOptions{OriginalRecipients: map[string]string{"c@example.com": "d@example.com"}}},
		{"ORCPT injection", []string{"b@example.com"}, submit.DSNOptions{OriginalRecipients: map[string]string{"b@example.com": "d@example.com\r\nDATA"}}},
	}
	c := dialListener(t, srv, srv.Implicit, tlsmode.Implicit)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.SendWith(context.Background(), "a@example.com", tt.to, strings.NewReader(testMsg), &submit.SendOptions{DSN: &tt.dsn}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if hasPrefix(commandsOn(srv, srv.Addr(srv.Implicit)), "MAIL") {
		t.Errorf("MAIL FROM was sent: %v", commandsOn(srv, srv.Addr(srv.Implicit)))
	}
}

func TestQueueIDOfCommonServers(t *testing.T) {
	tests := []struct{ reply, want string }{
		{"2.0.0 Ok: queued as 4F2A1", "4F2A1"},                                                                          // Postfix
		{"2.0.0 Ok: queued as 4Yx1Lr2Qz9z9ZZ", "4Yx1Lr2Qz9z9ZZ"},                                                        // Postfix long ids
		{"Ok: queued as 9Hd6Vq0CRXuz8vA1x5FDbA", "9Hd6Vq0CRXuz8vA1x5FDbA"},                                              // SendGrid
		{"OK id=1rT2kL-000Abc-3x", "1rT2kL-000Abc-3x"},                                                                  // Exim
		{"2.0.0 4AB1C2D3012345 Message accepted for delivery", "4AB1C2D3012345"},                                        // sendmail
		{"2.0.0 OK  1700000000 a640c23a62f3a-a9a2b1d1c2dsi123456.100 - gsmtp", "a640c23a62f3a-a9a2b1d1c2dsi123456.100"}, // Gmail
		{"2.0.0 OK 1700000000 a640c23a62f3a-a9a2b1d1c2dsi123456.100 - gsmtp", "a640c23a62f3a-a9a2b1d1c2dsi123456.100"},
		{"2.0.0 OK: queued", ""}, // go-smtp's default
		{"2.6.0 <abc@example.com> [InternalId=123] Queued mail for delivery", "123"}, // Exchange: the InternalId, not the Message-ID
		{"Great success", ""},
	}
	for _, tt := range tests {
		if got := submit.QueueID(tt.reply); got != tt.want {
			t.Errorf("QueueID(%q) = %q, want %q", tt.reply, got, tt.want)
		}
	}
}
