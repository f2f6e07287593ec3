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

// implicitScript is a scripted implicit-TLS server up to an authenticated
// session; caps are the EHLO keywords it advertises.
func implicitScript(caps string, rest ...script.Step) []script.Step {
	steps := []script.Step{
		script.StartTLS(),
		script.Send("220 mx ESMTP\r\n"),
		script.ExpectPrefix("EHLO "),
		script.Send("250-mx\r\n" + caps + "250 AUTH PLAIN\r\n"),
		script.ExpectPrefix("AUTH PLAIN "),
		script.Send("235 2.7.0 ok\r\n"),
	}
	return append(steps, rest...)
}

func dialScript(t *testing.T, srv *submittest.Server, steps []script.Step) (*submit.Client, tlsmode.Candidate) {
	t.Helper()
	sc := srv.ListenScript(submittest.Options{}, steps...)
	d := srv.Dialer(submit.PlainAuth("", "user", "pass"), sc)
	d.Timeout = 5 * time.Second
	c, err := d.Dial(context.Background(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return c, sc
}

func TestSendPipelinesTheEnvelopeInOneFlight(t *testing.T) {
	srv := submittest.NewServer(t)
	// The server reads the whole envelope before it answers anything: a
	// client waiting for MAIL's reply would stall until the deadline.
	c, addr := dialScript(t, srv, implicitScript("250-PIPELINING\r\n",
		script.Expect("MAIL FROM:<a@example.com>"),
		script.Expect("RCPT TO:<b@example.com>"),
		script.Expect("RCPT TO:<nobody@example.com>"),
		script.Expect("RCPT TO:<c@example.com>"),
		script.Expect("DATA"),
		script.Send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go ahead\r\n"),
		script.ExpectData(),
		script.Send("250 2.0.0 Ok: queued as 4F2A1\r\n"),
	))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com", "nobody@example.com", "c@example.com"}, strings.NewReader(testMsg), nil)
	var se *submit.SendError
	if !errors.As(err, &se) || len(se.Rejected) != 1 || se.Rejected[0].Addr != "nobody@example.com" || se.Rejected[0].Reply.Code != 550 || se.Accepted != 2 {
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
		script.Expect("MAIL FROM:<a@example.com>"),
		script.Expect("RCPT TO:<b@example.com>"),
		script.Expect("DATA"),
		script.Send("550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n"),
		// The next transaction must start clean, replies in step.
		script.Expect("MAIL FROM:<ok@example.com>"),
		script.Expect("RCPT TO:<b@example.com>"),
		script.Expect("DATA"),
		script.Send("250 ok\r\n250 ok\r\n354 go\r\n"),
		script.ExpectData(),
		script.Send("250 queued\r\n"),
	))
	defer c.Close()
	err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	var smtpErr *submit.Reply
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
	// recipient: the client must close the connection without ending the
	// message, since "." could deliver it, empty, to the recipients of a
	// transaction the server still holds.
	c, addr := dialScript(t, srv, implicitScript("250-PIPELINING\r\n",
		script.Expect("MAIL FROM:<a@example.com>"),
		script.Expect("RCPT TO:<b@example.com>"),
		script.Expect("DATA"),
		script.Send("250 ok\r\n550 5.1.1 no\r\n354 go\r\n"),
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
		if strings.Contains(l.Text, "secret") || l.Text == "." {
			t.Errorf("sent without recipients: %q", l.Text)
		}
	}
	if conns[0].Err != nil {
		t.Errorf("script: %v", conns[0].Err)
	}
	if err := c.Noop(context.Background()); err == nil {
		t.Error("the connection is still in use after the unwanted 354")
	}
}

// TestSendAfterEveryRecipientWasRefusedResetsTheTransaction is the Postfix
// case: DATA refused for want of recipients leaves MAIL FROM's transaction
// open, and a MAIL FROM without RSET would be refused as nested, or worse,
// join the old transaction. RSET goes alone, before anything of the next
// message.
func TestSendAfterEveryRecipientWasRefusedResetsTheTransaction(t *testing.T) {
	for _, caps := range []string{"250-PIPELINING\r\n", chunkingCaps} {
		t.Run(strings.TrimSpace(strings.ReplaceAll(caps, "250-", " ")), func(t *testing.T) {
			srv := submittest.NewServer(t)
			var first, second []script.Step
			if caps == chunkingCaps {
				first = []script.Step{script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
					script.Send("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 Error: no valid recipients\r\n")}
				second = []script.Step{script.Expect("RSET"), script.Send("250 reset\r\n"),
					script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.ExpectBDAT(),
					script.Send("250 ok\r\n250 ok\r\n250 2.0.0 Ok: queued as 2\r\n")}
			} else {
				first = []script.Step{script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.Expect("DATA"),
					script.Send("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 Error: no valid recipients\r\n")}
				second = []script.Step{script.Expect("RSET"), script.Send("250 reset\r\n"),
					script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:"), script.Expect("DATA"),
					script.Send("250 ok\r\n250 ok\r\n354 go\r\n"), script.ExpectData(), script.Send("250 2.0.0 Ok: queued as 2\r\n")}
			}
			c, sc := dialScript(t, srv, implicitScript(caps, append(first, second...)...))
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var se *submit.SendError
			if err := c.Send(ctx, "a@example.com", []string{"nobody@example.com"}, strings.NewReader(testMsg)); !errors.As(err, &se) || se.Accepted != 0 {
				t.Fatalf("first send: %v, want a SendError with none accepted", err)
			}
			res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
			if err != nil || res.QueueID != "2" {
				t.Fatalf("second send: %v", err)
			}
			if rec := scriptRecord(t, srv, sc, c); rec.Err != nil {
				t.Errorf("script: %v", rec.Err)
			}
		})
	}
}

func TestSendWithoutPipeliningWaitsForEachReply(t *testing.T) {
	srv := submittest.NewServer(t)
	c, addr := dialScript(t, srv, implicitScript("",
		script.Expect("MAIL FROM:<a@example.com>"),
		script.Send("250 ok\r\n"),
		script.Expect("RCPT TO:<b@example.com>"),
		script.Send("250 ok\r\n"),
		script.Expect("DATA"),
		script.Send("354 go\r\n"),
		script.ExpectData(),
		script.Send("250 queued as X1\r\n"),
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
			var steps []script.Step
			if caps == "" {
				steps = implicitScript(caps,
					script.Expect("MAIL FROM:<a@example.com>"), script.Send("250 ok\r\n"),
					script.Expect("RCPT TO:<b@example.com>"), script.Send("250 ok\r\n"),
					script.Expect("DATA"), script.Send("451 4.3.0 try later\r\n"),
					// The transaction is still open on the server: RSET first.
					script.Expect("RSET"), script.Send("250 reset\r\n"),
					script.Expect("MAIL FROM:<a@example.com>"), script.Send("250 ok\r\n"),
					script.Expect("RCPT TO:<b@example.com>"), script.Send("250 ok\r\n"),
					script.Expect("DATA"), script.Send("354 go\r\n"),
					script.ExpectData(), script.Send("250 queued\r\n"),
				)
			} else {
				steps = implicitScript(caps,
					script.Expect("MAIL FROM:<a@example.com>"), script.Expect("RCPT TO:<b@example.com>"), script.Expect("DATA"),
					script.Send("250 ok\r\n250 ok\r\n451 4.3.0 try later\r\n"),
					// RSET goes alone: a message must not meet a transaction
					// the server may still hold.
					script.Expect("RSET"), script.Send("250 reset\r\n"),
					script.Expect("MAIL FROM:<a@example.com>"), script.Expect("RCPT TO:<b@example.com>"), script.Expect("DATA"),
					script.Send("250 ok\r\n250 ok\r\n354 go\r\n"),
					script.ExpectData(), script.Send("250 queued\r\n"),
				)
			}
			c, addr := dialScript(t, srv, steps)
			err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
			var se *submit.StepError
			if !errors.As(err, &se) || se.Reply == nil || se.Reply.Code != 451 || se.Step != "DATA" || !submit.IsTemporary(err) {
				t.Fatalf("err = %v; want a temporary 451 to DATA", err)
			}
			if !strings.Contains(err.Error(), "DATA refused") || !strings.Contains(err.Error(), "try again later") {
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
