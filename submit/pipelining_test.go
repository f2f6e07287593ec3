package submit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// implicitScript is a scripted implicit-TLS server up to an authenticated
// session; caps are the EHLO keywords it advertises.
func implicitScript(caps string, rest ...submittest.Step) []submittest.Step {
	steps := []submittest.Step{
		submittest.StartTLS(),
		submittest.Send("220 mx ESMTP\r\n"),
		submittest.ExpectPrefix("EHLO "),
		submittest.Send("250-mx\r\n" + caps + "250 AUTH PLAIN\r\n"),
		submittest.ExpectPrefix("AUTH PLAIN "),
		submittest.Send("235 2.7.0 ok\r\n"),
	}
	return append(steps, rest...)
}

func dialScript(t *testing.T, srv *submittest.Server, steps []submittest.Step) (*submit.Client, string) {
	t.Helper()
	addr := srv.ListenScript(submittest.Options{}, steps...)
	d := &submit.Dialer{
		Candidates: []tlsmode.Candidate{{Port: srv.Port(addr), Mode: tlsmode.Implicit}},
		TLSConfig:  srv.ClientTLSConfig(),
		Auth:       submit.PlainAuth("", "user", "pass"),
		Timeout:    5 * time.Second,
	}
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return c, addr
}

func TestSendPipelinesTheEnvelopeInOneFlight(t *testing.T) {
	srv := submittest.NewServer(t)
	// The server reads the whole envelope before it answers anything: a
	// client waiting for MAIL's reply would stall until the deadline.
	c, addr := dialScript(t, srv, implicitScript("250-PIPELINING\r\n",
		submittest.Expect("MAIL FROM:<a@example.com>"),
		submittest.Expect("RCPT TO:<b@example.com>"),
		submittest.Expect("RCPT TO:<nobody@example.com>"),
		submittest.Expect("RCPT TO:<c@example.com>"),
		submittest.Expect("DATA"),
		submittest.Send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go ahead\r\n"),
		submittest.ExpectData(),
		submittest.Send("250 2.0.0 Ok: queued as 4F2A1\r\n"),
	))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com", "nobody@example.com", "c@example.com"}, strings.NewReader(testMsg), nil)
	var se *submit.SendError
	if !errors.As(err, &se) || len(se.Rejected) != 1 || se.Rejected[0].Addr != "nobody@example.com" || se.Rejected[0].Err.Code != 550 || se.Accepted != 2 {
		t.Fatalf("err = %v; want a SendError for nobody@ only", err)
	}
	if res.QueueID != "4F2A1" || len(res.Accepted) != 2 {
		t.Errorf("result = %+v", res)
	}
	c.Close()
	conns, err := srv.WaitScripts(ctx, addr)
	if err != nil || len(conns) != 1 || len(conns[0].Messages) != 1 || string(conns[0].Messages[0]) != testMsg {
		t.Fatalf("script saw %+v, %v", conns, err)
	}
}

func TestSendPipelinedMailRefusalKeepsTheSessionInStep(t *testing.T) {
	srv := submittest.NewServer(t)
	c, _ := dialScript(t, srv, implicitScript("250-PIPELINING\r\n",
		submittest.Expect("MAIL FROM:<a@example.com>"),
		submittest.Expect("RCPT TO:<b@example.com>"),
		submittest.Expect("DATA"),
		submittest.Send("550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n"),
		// The next transaction must start clean, replies in step.
		submittest.Expect("MAIL FROM:<ok@example.com>"),
		submittest.Expect("RCPT TO:<b@example.com>"),
		submittest.Expect("DATA"),
		submittest.Send("250 ok\r\n250 ok\r\n354 go\r\n"),
		submittest.ExpectData(),
		submittest.Send("250 queued\r\n"),
	))
	defer c.Close()
	err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	var smtpErr *smtp.SMTPError
	if !errors.As(err, &smtpErr) || smtpErr.Code != 550 {
		t.Fatalf("err = %v; want the 550 to MAIL", err)
	}
	if err := c.Send(context.Background(), "ok@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatalf("second send: %v", err)
	}
}

func TestSendPipelinedDataAcceptedWithoutRecipientsSendsNothing(t *testing.T) {
	srv := submittest.NewServer(t)
	// A broken server answers DATA with 354 although it refused the only
	// recipient: the client must end the message at once, empty.
	c, addr := dialScript(t, srv, implicitScript("250-PIPELINING\r\n",
		submittest.Expect("MAIL FROM:<a@example.com>"),
		submittest.Expect("RCPT TO:<b@example.com>"),
		submittest.Expect("DATA"),
		submittest.Send("250 ok\r\n550 5.1.1 no\r\n354 go\r\n"),
		submittest.Expect("."),
		submittest.Send("554 5.5.1 no valid recipients\r\n"),
	))
	defer c.Close()
	err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: secret body\r\n\r\nsecret\r\n"))
	var se *submit.SendError
	if !errors.As(err, &se) || se.Accepted != 0 {
		t.Fatalf("err = %v; want a SendError with nothing accepted", err)
	}
	c.Close()
	conns, _ := srv.WaitScripts(context.Background(), addr)
	for _, l := range conns[0].Lines {
		if strings.Contains(l.Text, "secret") {
			t.Errorf("message content sent without recipients: %q", l.Text)
		}
	}
	if conns[0].Err != nil {
		t.Errorf("script: %v", conns[0].Err)
	}
}

func TestSendWithoutPipeliningWaitsForEachReply(t *testing.T) {
	srv := submittest.NewServer(t)
	c, addr := dialScript(t, srv, implicitScript("",
		submittest.Expect("MAIL FROM:<a@example.com>"),
		submittest.Send("250 ok\r\n"),
		submittest.Expect("RCPT TO:<b@example.com>"),
		submittest.Send("250 ok\r\n"),
		submittest.Expect("DATA"),
		submittest.Send("354 go\r\n"),
		submittest.ExpectData(),
		submittest.Send("250 queued as X1\r\n"),
	))
	defer c.Close()
	if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	conns, _ := srv.WaitScripts(context.Background(), addr)
	if conns[0].Err != nil {
		t.Errorf("script: %v", conns[0].Err)
	}
}

func TestSendAfterRefusedDataResetsTheTransaction(t *testing.T) {
	for _, caps := range []string{"", "250-PIPELINING\r\n"} {
		name := "serial"
		if caps != "" {
			name = "pipelined"
		}
		t.Run(name, func(t *testing.T) {
			srv := submittest.NewServer(t)
			var steps []submittest.Step
			if caps == "" {
				steps = implicitScript(caps,
					submittest.Expect("MAIL FROM:<a@example.com>"), submittest.Send("250 ok\r\n"),
					submittest.Expect("RCPT TO:<b@example.com>"), submittest.Send("250 ok\r\n"),
					submittest.Expect("DATA"), submittest.Send("451 4.3.0 try later\r\n"),
					// The transaction is still open on the server: RSET first.
					submittest.Expect("RSET"), submittest.Send("250 reset\r\n"),
					submittest.Expect("MAIL FROM:<a@example.com>"), submittest.Send("250 ok\r\n"),
					submittest.Expect("RCPT TO:<b@example.com>"), submittest.Send("250 ok\r\n"),
					submittest.Expect("DATA"), submittest.Send("354 go\r\n"),
					submittest.ExpectData(), submittest.Send("250 queued\r\n"),
				)
			} else {
				steps = implicitScript(caps,
					submittest.Expect("MAIL FROM:<a@example.com>"), submittest.Expect("RCPT TO:<b@example.com>"), submittest.Expect("DATA"),
					submittest.Send("250 ok\r\n250 ok\r\n451 4.3.0 try later\r\n"),
					submittest.Expect("RSET"), submittest.Expect("MAIL FROM:<a@example.com>"), submittest.Expect("RCPT TO:<b@example.com>"), submittest.Expect("DATA"),
					submittest.Send("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
					submittest.ExpectData(), submittest.Send("250 queued\r\n"),
				)
			}
			c, addr := dialScript(t, srv, steps)
			err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
			var re *submit.ReplyError
			if !errors.As(err, &re) || re.Err.Code != 451 || re.Command != "DATA" || !submit.IsTemporary(err) {
				t.Fatalf("err = %v; want a temporary 451 to DATA", err)
			}
			if !strings.Contains(err.Error(), "refused DATA") || !strings.Contains(err.Error(), "try again later") {
				t.Errorf("error does not say what happened: %v", err)
			}
			if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
				t.Fatalf("second send: %v", err)
			}
			c.Close()
			conns, _ := srv.WaitScripts(context.Background(), addr)
			if conns[0].Err != nil {
				t.Errorf("script: %v", conns[0].Err)
			}
		})
	}
}
