package submit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// TestRefusalsHaveAdvice plays real providers' refusals (the captures of
// internal/diag/testdata/providers) on the wire, at the step they answer,
// and checks what a program sees: the error's type, whether it is
// temporary (where the provider's knowledge beats the code), its sentinel,
// and advice that names the fix.
func TestRefusalsHaveAdvice(t *testing.T) {
	mailFrom := []script.Step{script.ExpectPrefix("MAIL FROM:"), script.Send("250 2.1.0 ok\r\n")}
	rcptOK := []script.Step{script.ExpectPrefix("RCPT TO:"), script.Send("250 2.1.5 ok\r\n")}
	tests := []struct {
		name      string
		steps     []script.Step // after the opening
		noAuth    bool          // steps start with AUTH
		temporary bool
		kind      submit.Kind
		sentinel  error
		advice    []string // in StepError.Advice, SendError.Advice or DialError.Advice
		check     func(t *testing.T, err error)
	}{
		{
			// https://github.com/nodemailer/nodemailer/issues/1096
			name: "Mailgun sandbox 421 to DATA never clears",
			steps: steps(authOK, mailFrom, rcptOK, one(script.Expect("DATA"),
				script.Send("421 Domain sandbox9a7997dd70324f71bcb79336ab4c82ec.mailgun.org is not allowed to send: Sandbox subdomains are for test purposes only. Please add your own domain or add the address to authorized recipients in Account Settings.\r\n"),
				script.Close())),
			kind:   submit.KindAccount,
			advice: []string{"Mailgun", "authorised recipients"},
			check: func(t *testing.T, err error) {
				var se *submit.StepError
				var r *submit.Reply
				if !errors.As(err, &se) || se.Step != "DATA" || !errors.As(err, &r) || r.Code != 421 {
					t.Errorf("err = %v; want the StepError of DATA with the 421", err)
				}
			},
		},
		{
			// https://github.com/jstedfast/MailKit/issues/968
			name: "GMX 550 to RCPT TO is a rate limit",
			steps: steps(authOK, mailFrom, one(script.ExpectPrefix("RCPT TO:"),
				script.Send(script.Reply(550, "Requested action not taken: mailbox unavailable", "Failure sending mail. Try again later")),
				script.Expect("RSET"), script.Send("250 2.0.0 ok\r\n"))),
			temporary: true,
			kind:      submit.KindRateLimited,
			advice:    []string{"GMX", "Mailer.RateLimit"},
			check: func(t *testing.T, err error) {
				var se *submit.SendError
				if !errors.As(err, &se) || len(se.Rejected) != 1 || se.Rejected[0].Advice() == "" {
					t.Errorf("err = %v; want a SendError whose refusal has advice", err)
				}
			},
		},
		{
			// https://github.com/docker-mailserver/docker-mailserver/issues/1168
			name: "Postfix refuses the sender at RCPT TO",
			steps: steps(authOK, mailFrom, one(script.ExpectPrefix("RCPT TO:"),
				script.Send("553 5.7.1 <a@example.com>: Sender address rejected: not owned by user mallory-victim\r\n"),
				script.Expect("RSET"), script.Send("250 2.0.0 ok\r\n"))),
			kind:   submit.KindSender,
			advice: []string{"make the envelope sender and the From header that address"},
		},
		{
			// https://github.com/schweikert/postgrey/issues/84
			name: "greylisting",
			steps: steps(authOK, mailFrom, one(script.ExpectPrefix("RCPT TO:"),
				script.Send("450 4.2.0 <b@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html\r\n"),
				script.Expect("RSET"), script.Send("250 2.0.0 ok\r\n"))),
			temporary: true,
			kind:      submit.KindGreylisted,
			advice:    []string{"in a few minutes"},
		},
		{
			// https://github.com/foxcpp/maddy (the interoperability matrix's maddy 0.8.1)
			name:     "maddy's 454 to AUTH rejects the credential",
			noAuth:   true,
			steps:    one(script.ExpectPrefix("AUTH PLAIN "), script.Send("454 4.7.0 auth: invalid credentials\r\n")),
			sentinel: submit.ErrAuthFailed,
			kind:     submit.KindCredential,
			advice:   []string{"maddy", "submit.PasswordAuth"},
		},
		{
			// https://github.com/yegor256/0pdd/issues/275
			name:   "Amazon SES sending paused",
			steps:  steps(authOK, mailFrom, rcptOK, toDataOnly(), one(script.ExpectData(), script.Send("554 Message rejected: Sending paused for this account. For more information, please check the inbox of the email address associated with your AWS account.\r\n"))),
			kind:   submit.KindAccount,
			advice: []string{"Amazon SES", "resume sending"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := submittest.NewServer(t, submittest.Options{Accounts: map[string]string{hostileUser: hostilePass}})
			cand := playScript(srv, tlsmode.Implicit, submittest.Options{}, implicitOpening("AUTH PLAIN"), tt.steps)
			d := &submit.Dialer{Candidates: []tlsmode.Candidate{cand}, TLSConfig: srv.ClientTLSConfig(),
				Auth: submit.PasswordAuth(hostileUser, hostilePass), Timeout: 3 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := d.Dial(ctx, "127.0.0.1")
			if err == nil {
				defer c.Close()
				err = c.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(hostileMsg))
			}
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if got := submit.IsTemporary(err); got != tt.temporary {
				t.Errorf("IsTemporary = %v; want %v", got, tt.temporary)
			}
			if got := submit.KindOf(err); got != tt.kind {
				t.Errorf("KindOf = %v; want %v", got, tt.kind)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("err = %v; want %v", err, tt.sentinel)
			}
			var adv string
			var (
				se   *submit.StepError
				send *submit.SendError
				de   *submit.DialError
			)
			switch {
			case errors.As(err, &de):
				adv = de.Advice()
			case errors.As(err, &se):
				adv = se.Advice()
			case errors.As(err, &send):
				adv = send.Advice()
			}
			for _, want := range tt.advice {
				if !strings.Contains(adv, want) {
					t.Errorf("advice %q does not say %q", adv, want)
				}
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

// toDataOnly accepts DATA.
func toDataOnly() []script.Step {
	return []script.Step{script.Expect("DATA"), script.Send("354 go ahead\r\n")}
}

// TestSendErrorAdviceNamesEachRecipient: refusals with different advice
// say which recipients each is for; one permanent refusal makes the whole
// permanent.
func TestSendErrorAdviceNamesEachRecipient(t *testing.T) {
	se := &submit.SendError{Accepted: 1, Rejected: []submit.RecipientError{
		{Addr: "gone@example.org", Reply: &submit.Reply{Code: 550, Enhanced: "5.1.1", Text: "<gone@example.org>: Recipient address rejected: User unknown in virtual mailbox table"}},
		{Addr: "grey@example.org", Reply: &submit.Reply{Code: 450, Enhanced: "4.2.0", Text: "<grey@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"}},
	}}
	adv := se.Advice()
	for _, want := range []string{"for gone@example.org: the recipient's address does not exist", "for grey@example.org: the server greylists"} {
		if !strings.Contains(adv, want) {
			t.Errorf("advice %q does not say %q", adv, want)
		}
	}
	if submit.IsTemporary(se) {
		t.Error("a SendError with an unknown recipient is temporary")
	}
	if got := se.Rejected[1].Advice(); !strings.Contains(got, "greylists") {
		t.Errorf("RecipientError.Advice = %q", got)
	}
	if !submit.IsTemporary(se.Rejected[1]) || submit.IsTemporary(se.Rejected[0]) {
		t.Error("IsTemporary of the RecipientErrors does not follow their codes")
	}
}
