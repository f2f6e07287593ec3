package submit_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// The hostile-server catalogue: every way a server or a network in the
// middle has been seen to (or could) trick a mail client, after the NO
// STARTTLS study (Poddebniak et al., USENIX Security 2021) and the SMTP
// smuggling reports of 2023. Each case asserts the same three things: no
// credential, no MAIL FROM and no message byte left the client before TLS
// was verified; the call returned within its time budget; and the error
// wraps the sentinel a program would branch on.

const (
	hostileUser = "mallory-victim"
	hostilePass = "Pa55-hostile-secret"
	bodyMarker  = "BODY-MARKER-7f3a"
	hostileMsg  = "Subject: hostile\r\n\r\n" + bodyMarker + "\r\n"
	banner      = "220 localhost ESMTP hostile\r\n"
)

// secrets are the strings that must never be seen before TLS, nor in an
// error: the password, the PLAIN blob and its base64, the body marker.
var secrets = []string{
	hostilePass,
	base64.StdEncoding.EncodeToString([]byte(hostilePass)),
	base64.StdEncoding.EncodeToString([]byte("\x00" + hostileUser + "\x00" + hostilePass)),
	bodyMarker,
}

// ehlo renders an EHLO reply advertising caps.
func ehlo(caps ...string) string {
	return script.Reply(250, append([]string{"localhost greets you"}, caps...)...)
}

// starttlsOpening is a well-behaved STARTTLS opening: pre are the
// capabilities in clear (STARTTLS is added), post those after TLS.
func starttlsOpening(pre, post []string) []script.Step {
	return []script.Step{
		script.Send(banner),
		script.ExpectPrefix("EHLO "),
		script.Send(ehlo(append(pre, "STARTTLS")...)),
		script.Expect("STARTTLS"),
		script.Send("220 2.0.0 Ready to start TLS\r\n"),
		script.StartTLS(),
		script.ExpectPrefix("EHLO "),
		script.Send(ehlo(post...)),
	}
}

// implicitOpening is a well-behaved implicit TLS opening.
func implicitOpening(caps ...string) []script.Step {
	return []script.Step{
		script.StartTLS(),
		script.Send(banner),
		script.ExpectPrefix("EHLO "),
		script.Send(ehlo(caps...)),
	}
}

// toSTARTTLS is a clear opening up to the client's STARTTLS command.
func toSTARTTLS() []script.Step {
	return []script.Step{
		script.Send(banner),
		script.ExpectPrefix("EHLO "),
		script.Send(ehlo("PIPELINING", "STARTTLS")),
		script.Expect("STARTTLS"),
	}
}

var (
	authOK = []script.Step{script.ExpectPrefix("AUTH PLAIN "), script.Send("235 2.7.0 Authentication successful\r\n")}
	// toData accepts MAIL FROM, one RCPT TO and DATA.
	toData = []script.Step{
		script.ExpectPrefix("MAIL FROM:"), script.Send("250 2.1.0 ok\r\n"),
		script.ExpectPrefix("RCPT TO:"), script.Send("250 2.1.5 ok\r\n"),
		script.Expect("DATA"), script.Send("354 go ahead\r\n"),
	}
)

func steps(parts ...[]script.Step) []script.Step {
	var out []script.Step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(s ...script.Step) []script.Step { return s }

// script adds a scripted listener and returns it as a candidate.
func playScript(srv *submittest.Server, m tlsmode.Mode, o submittest.Options, s ...[]script.Step) tlsmode.Candidate {
	return tlsmode.Candidate{Port: (srv.ListenScript(o, steps(s...)...)).Port, Mode: m}
}

func fault(srv *submittest.Server, m tlsmode.Mode, o submittest.Options, f ...submittest.Fault) tlsmode.Candidate {
	return tlsmode.Candidate{Port: (srv.ListenWith(m, o, f...)).Port, Mode: m}
}

// errAny marks a case that must fail without a sentinel of its own; its
// check says what the error must be.
var errAny = errors.New("any error")

type hostileCase struct {
	name  string
	cands func(srv *submittest.Server) []tlsmode.Candidate
	// dialer adjusts the Dialer (Timeout, LocalName, TLSConfig, Auth).
	dialer func(d *submit.Dialer)
	// send, when set, is sent after a successful Dial, from and to (default
	// a@example.com, b@example.com) within sendTimeout (default 2s).
	send        string
	from, to    string
	sendTimeout time.Duration
	// want is the sentinel the final error wraps; nil means success.
	want error
	// within bounds the whole call; 0 means 4s.
	within time.Duration
	// auths is how many AUTH commands the servers may see in total.
	auths int
	// forbid are command prefixes no connection may carry, even under TLS.
	forbid []string
	// wantData is the message the scripted server must have received.
	wantData string
	check    func(t *testing.T, err error, c *submit.Client, conns []script.Record)
}

func hostileCases() []hostileCase {
	cfg := submittest.Options{}
	starttls := func(f ...submittest.Fault) func(*submittest.Server) []tlsmode.Candidate {
		return func(srv *submittest.Server) []tlsmode.Candidate {
			return []tlsmode.Candidate{fault(srv, tlsmode.StartTLS, cfg, f...)}
		}
	}
	starttlsWith := func(o submittest.Options, f ...submittest.Fault) func(*submittest.Server) []tlsmode.Candidate {
		return func(srv *submittest.Server) []tlsmode.Candidate {
			return []tlsmode.Candidate{fault(srv, tlsmode.StartTLS, o, f...)}
		}
	}
	scripted := func(m tlsmode.Mode, s ...[]script.Step) func(*submittest.Server) []tlsmode.Candidate {
		return func(srv *submittest.Server) []tlsmode.Candidate {
			return []tlsmode.Candidate{playScript(srv, m, cfg, s...)}
		}
	}
	errText := func(subs ...string) func(*testing.T, error, *submit.Client, []script.Record) {
		return func(t *testing.T, err error, _ *submit.Client, _ []script.Record) {
			t.Helper()
			for _, s := range subs {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("error %v does not mention %q", err, s)
				}
			}
		}
	}
	smtpCode := func(code int, temporary bool) func(*testing.T, error, *submit.Client, []script.Record) {
		return func(t *testing.T, err error, _ *submit.Client, _ []script.Record) {
			t.Helper()
			var se *submit.Reply
			if !errors.As(err, &se) || se.Code != code {
				t.Errorf("err = %v; want an *submit.Reply %d", err, code)
			}
			if submit.IsTemporary(err) != temporary {
				t.Errorf("IsTemporary = %v; want %v", !temporary, temporary)
			}
		}
	}
	timedOut := func(t *testing.T, err error, _ *submit.Client, _ []script.Record) {
		t.Helper()
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("err = %v; want a deadline", err)
		}
		if !submit.IsTemporary(err) {
			t.Errorf("a timeout is not temporary: %v", err)
		}
	}
	slow := func(d *submit.Dialer) { d.Timeout = time.Second }
	reset := func(t *testing.T, err error, _ *submit.Client, _ []script.Record) {
		t.Helper()
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("err = %v; want a reset", err)
		}
		if !submit.IsTemporary(err) {
			t.Errorf("a reset is not temporary: %v", err)
		}
	}
	handshakeReset := func(t *testing.T, err error, c *submit.Client, conns []script.Record) {
		t.Helper()
		reset(t, err, c, conns)
		var de *submit.DialError
		if !errors.As(err, &de) {
			t.Fatalf("err = %v; want a *submit.DialError", err)
		}
		msg := err.Error()
		headline, _, _ := strings.Cut(msg, "\n")
		if !strings.HasSuffix(headline, ": connection reset") {
			t.Errorf("headline %q does not say the connection was reset", headline)
		}
		if !strings.Contains(msg, "tls: the connection was reset during the TLS handshake") {
			t.Errorf("error %q does not say the connection was reset during the handshake", msg)
		}
		for _, word := range []string{"certificate", "verif"} {
			if strings.Contains(strings.ToLower(msg), word) {
				t.Errorf("error %q speaks of %q: a reset says nothing about the certificate", msg, word)
			}
		}
	}
	smuggled := func(payload string) hostileCase {
		body := "Subject: smuggle\r\n\r\nbefore" + payload + "MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n"
		want := "Subject: smuggle\r\n\r\nbefore\r\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n"
		return hostileCase{
			name:     "body with " + strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(payload),
			cands:    scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK, toData, one(script.ExpectData(), script.Send("250 2.0.0 queued\r\n"))),
			send:     body,
			auths:    1,
			forbid:   []string{"MAIL FROM:<evil", "RCPT TO:<victim"},
			wantData: want,
		}
	}

	replayed := func(name string, after []script.Step, want error) hostileCase {
		return hostileCase{name: name, cands: func(srv *submittest.Server) []tlsmode.Candidate {
			return []tlsmode.Candidate{
				playScript(srv, tlsmode.Implicit, cfg, implicitOpening("AUTH PLAIN"), one(script.ExpectPrefix("AUTH PLAIN ")), after),
				playScript(srv, tlsmode.StartTLS, cfg, starttlsOpening(nil, []string{"AUTH PLAIN"}), authOK),
			}
		}, dialer: func(d *submit.Dialer) { d.FallbackDelay = -1; d.Timeout = time.Second }, want: want, auths: 1, within: 3 * time.Second}
	}

	return []hostileCase{
		// STARTTLS stripping and downgrade (go-smtp with faults).
		{name: "STARTTLS removed", cands: starttls(submittest.StripSTARTTLS), want: submit.ErrSTARTTLSStripped},
		{name: "STARTTLS masked as XXXXXXXA", cands: starttls(submittest.MaskSTARTTLS), want: submit.ErrSTARTTLSStripped, check: errText("XXXXXXXA")},
		{name: "STARTTLS answered 454", cands: starttlsWith(submittest.Options{STARTTLSReply: "454 4.7.0 TLS not available"}, submittest.RejectSTARTTLS), want: submit.ErrSTARTTLSStripped, check: errText("454")},
		{name: "STARTTLS answered 502", cands: starttlsWith(submittest.Options{STARTTLSReply: "502 5.5.1 not implemented"}, submittest.RejectSTARTTLS), want: submit.ErrSTARTTLSStripped, check: errText("502")},
		{name: "STARTTLS answered 530", cands: starttlsWith(submittest.Options{STARTTLSReply: "530 5.7.0 go away"}, submittest.RejectSTARTTLS), want: submit.ErrSTARTTLSStripped, check: errText("530")},
		{name: "STARTTLS answered 421", cands: starttlsWith(submittest.Options{STARTTLSReply: "421 4.3.2 bye"}, submittest.RejectSTARTTLS), want: submit.ErrSTARTTLSStripped, check: errText("421")},
		{name: "AUTH offered in clear with STARTTLS removed", cands: starttls(submittest.AuthBeforeTLS, submittest.StripSTARTTLS), want: submit.ErrSTARTTLSStripped},
		{name: "465 answering in clear", cands: func(srv *submittest.Server) []tlsmode.Candidate {
			return []tlsmode.Candidate{fault(srv, tlsmode.Implicit, cfg, submittest.ClearOnImplicit)}
		}, want: submit.ErrWrongMode},

		// Response injection (CVE-2011-0411 and the 2021 study's variants).
		{name: "220 with extra lines in the same segment", cands: scripted(tlsmode.StartTLS, toSTARTTLS(), one(script.Send("220 2.0.0 go ahead\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"))), want: submit.ErrResponseInjection, check: errText("250-PIPELINING")},
		{name: "220 with a partial line in the same segment", cands: scripted(tlsmode.StartTLS, toSTARTTLS(), one(script.Send("220 2.0.0 go ahead\r\n250 AUTH PL"))), want: submit.ErrResponseInjection, check: errText("250 AUTH PL")},
		{name: "220 with extra lines in a later segment", cands: scripted(tlsmode.StartTLS, toSTARTTLS(), one(script.Send("220 2.0.0 go ahead\r\n"), script.Pause(50*time.Millisecond), script.Send("250 AUTH PLAIN\r\n"))), want: submit.ErrResponseInjection},
		{name: "220 sent before STARTTLS was asked", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.ExpectPrefix("EHLO "), script.Send(ehlo("STARTTLS")+"220 2.0.0 go ahead\r\n"))), want: submit.ErrResponseInjection, check: errText("before STARTTLS was sent")},

		// Servers that do not speak ESMTP, or pretend not to.
		{name: "EHLO refused, only HELO", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.ExpectPrefix("EHLO "), script.Send("502 5.5.2 Error: command not recognized\r\n"))), want: submit.ErrSTARTTLSStripped, forbid: []string{"HELO"}, check: errText("refused EHLO")},
		{name: "EHLO answered 530 must issue STARTTLS first", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.ExpectPrefix("EHLO "), script.Send("530 5.7.0 Must issue a STARTTLS command first\r\n"))), want: submit.ErrSTARTTLSStripped, forbid: []string{"HELO"}},
		{name: "465 without ESMTP: HELO under TLS, no AUTH", cands: scripted(tlsmode.Implicit, one(script.StartTLS(), script.Send(banner), script.ExpectPrefix("EHLO "), script.Send("500 5.5.1 what?\r\n"), script.ExpectPrefix("HELO "), script.Send("250 localhost\r\n"))), want: submit.ErrMechanismUnavailable},

		// Capabilities: only what was said after TLS counts.
		{name: "AUTH advertised before TLS but not after", cands: scripted(tlsmode.StartTLS, starttlsOpening([]string{"AUTH PLAIN LOGIN"}, []string{"SIZE 1000"})), want: submit.ErrMechanismUnavailable, check: errText("after TLS")},
		{name: "different capabilities before and after TLS", cands: scripted(tlsmode.StartTLS, starttlsOpening([]string{"AUTH LOGIN", "SIZE 10"}, []string{"AUTH PLAIN", "SIZE 100000"}), authOK), auths: 1,
			check: func(t *testing.T, _ error, c *submit.Client, _ []script.Record) {
				if n, _ := c.MaxMessageSize(); c.Mechanism() != "PLAIN" || n != 100000 {
					t.Errorf("mechanism %q, SIZE %d; want the post-TLS PLAIN and 100000", c.Mechanism(), n)
				}
			}},
		{name: "465 session advertising STARTTLS inside TLS", cands: scripted(tlsmode.Implicit, implicitOpening("STARTTLS", "AUTH PLAIN"), authOK), auths: 1},
		{name: "STARTTLS advertised again after STARTTLS", cands: scripted(tlsmode.StartTLS, starttlsOpening(nil, []string{"STARTTLS", "AUTH PLAIN"}), authOK), auths: 1},

		// Certificates and TLS versions.
		{name: "certificate for another name", cands: starttlsWith(submittest.Options{CertName: "mail.other.example"}), want: submit.ErrCertificate, check: errText("mail.other.example")},
		{name: "self-signed certificate", cands: starttlsWith(submittest.Options{SelfSigned: true}), want: submit.ErrCertificate, check: errText("self-signed")},
		{name: "expired certificate", cands: starttlsWith(submittest.Options{CertExpired: true}), want: submit.ErrCertificate, check: errText("expired on")},
		{name: "wildcard in the middle of a label", cands: starttlsWith(submittest.Options{CertName: "f*o.example.com"}), want: submit.ErrCertificate,
			dialer: func(d *submit.Dialer) { d.TLSConfig.ServerName = "foo.example.com" }, check: errText("f*o.example.com", `"foo.example.com"`)},
		{name: "TLS 1.0 only", cands: starttlsWith(submittest.Options{MaxTLSVersion: 0x0301}), want: submit.ErrTLSVersion, check: errText("below 1.2")},
		{name: "TLS 1.1 only", cands: starttlsWith(submittest.Options{MaxTLSVersion: 0x0302}), want: submit.ErrTLSVersion, check: errText("below 1.2")},

		// Connections that break.
		{name: "RST right after 220", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.Reset())), want: errAny, check: reset},
		{name: "RST in reply to EHLO", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.ExpectPrefix("EHLO "), script.Reset())), want: errAny, check: reset},
		// The ClientHello has arrived when the server resets: a reset, as
		// temporary as any other, and nothing to do with certificates.
		{name: "RST during the implicit TLS handshake", cands: scripted(tlsmode.Implicit, one(script.Pause(100*time.Millisecond), script.Reset())), want: errAny, check: handshakeReset},
		{name: "RST during the TLS handshake after STARTTLS", cands: scripted(tlsmode.StartTLS, toSTARTTLS(), one(script.Send("220 2.0.0 go ahead\r\n"), script.Pause(100*time.Millisecond), script.Reset())), want: errAny, check: handshakeReset},

		// Bounded reads and the reply grammar.
		{name: "reply line of 600 bytes is tolerated", cands: scripted(tlsmode.Implicit, one(script.StartTLS(), script.Send("220 "+strings.Repeat("w", 600)+"\r\n"), script.ExpectPrefix("EHLO "), script.Send(ehlo("AUTH PLAIN"))), authOK), auths: 1},
		{name: "reply line over 1000 bytes", cands: scripted(tlsmode.StartTLS, one(script.Send("220 "+strings.Repeat("x", 5000)+"\r\n"))), want: submit.ErrProtocol, check: errText("longer than 1000")},
		{name: "endless 250- continuation", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.ExpectPrefix("EHLO "), script.Repeat("250-X-ENDLESS\r\n", 0))), want: submit.ErrProtocol, check: errText("more than 100 lines")},
		{name: "continuation beyond 64 KiB", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.ExpectPrefix("EHLO "), script.Repeat("250-"+strings.Repeat("y", 990)+"\r\n", 0))), want: submit.ErrProtocol, check: errText("larger than 65536")},
		{name: "code 2500", cands: scripted(tlsmode.StartTLS, one(script.Send("2500 hello\r\n"))), want: submit.ErrProtocol},
		{name: "code 25 OK", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.ExpectPrefix("EHLO "), script.Send("25 OK\r\n"))), want: submit.ErrProtocol},
		{name: "continuation with mixed codes", cands: scripted(tlsmode.StartTLS, one(script.Send(banner), script.ExpectPrefix("EHLO "), script.Send("250-localhost\r\n220-STARTTLS\r\n250 SIZE 10\r\n"))), want: submit.ErrProtocol, check: errText("continuation")},
		{name: "control characters in a reply", cands: scripted(tlsmode.StartTLS, one(script.Send("220 ok\r235 forged \x1b[2J\r\n"))), want: submit.ErrProtocol, check: errText("control character")},

		// Time exhaustion: the attempt's deadline holds at every step.
		{name: "slowloris banner", cands: scripted(tlsmode.StartTLS, one(script.SendSlowly(banner, 5*time.Second))), dialer: slow, want: errAny, within: 2500 * time.Millisecond, check: timedOut},
		{name: "slowloris EHLO reply under TLS", cands: scripted(tlsmode.Implicit, one(script.StartTLS(), script.Send(banner), script.ExpectPrefix("EHLO "), script.SendSlowly(ehlo("AUTH PLAIN"), 5*time.Second))), dialer: slow, want: errAny, within: 2500 * time.Millisecond, check: timedOut},
		{name: "slowloris reply to AUTH", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), one(script.ExpectPrefix("AUTH PLAIN "), script.SendSlowly("235 ok\r\n", 5*time.Second))), dialer: slow, want: errAny, within: 2500 * time.Millisecond, auths: 1, check: timedOut},
		{name: "slowloris reply to MAIL FROM", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK, one(script.ExpectPrefix("MAIL FROM:"), script.SendSlowly("250 ok\r\n", 5*time.Second))), send: hostileMsg, sendTimeout: time.Second, want: errAny, auths: 1, within: 3500 * time.Millisecond, check: timedOut},
		{name: "slowloris reply after the final dot", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK, toData, one(script.ExpectData(), script.SendSlowly("250 ok\r\n", 5*time.Second))), send: hostileMsg, sendTimeout: time.Second, want: submit.ErrOutcomeUnknown, auths: 1, within: 3500 * time.Millisecond},

		// Transactions that break.
		{name: "421 in the middle of a transaction", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK, one(script.ExpectPrefix("MAIL FROM:"), script.Send("250 ok\r\n"), script.ExpectPrefix("RCPT TO:"), script.Send("421 4.3.2 shutting down\r\n"), script.Close())),
			send: hostileMsg, want: errAny, auths: 1, forbid: []string{"DATA"}, check: smtpCode(421, true)},
		{name: "drop after the final dot", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK, toData, one(script.ExpectData(), script.Close())), send: hostileMsg, want: submit.ErrOutcomeUnknown, auths: 1,
			check: func(t *testing.T, err error, _ *submit.Client, _ []script.Record) {
				if submit.IsTemporary(err) {
					t.Error("an unknown outcome is reported as safe to retry")
				}
			}},
		{name: "RST after the final dot", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK, toData, one(script.ExpectData(), script.Reset())), send: hostileMsg, want: submit.ErrOutcomeUnknown, auths: 1},

		// AUTH refusals: 5xx ends the Dial, the credential is not replayed.
		{name: "538 to AUTH", cands: func(srv *submittest.Server) []tlsmode.Candidate {
			s := steps(implicitOpening("AUTH PLAIN"), one(script.ExpectPrefix("AUTH PLAIN "), script.Send("538 5.7.11 Encryption required for requested authentication mechanism\r\n")))
			return []tlsmode.Candidate{playScript(srv, tlsmode.Implicit, cfg, s), playScript(srv, tlsmode.Implicit, cfg, s)}
		}, dialer: func(d *submit.Dialer) { d.FallbackDelay = time.Millisecond }, want: submit.ErrAuthFailed, auths: 1, check: func(t *testing.T, err error, c *submit.Client, conns []script.Record) {
			smtpCode(538, false)(t, err, c, conns)
			if strings.Contains(err.Error(), "another port won") {
				t.Errorf("no port won, yet the error says one did:\n%v", err)
			}
		}},
		{name: "534 to AUTH", cands: func(srv *submittest.Server) []tlsmode.Candidate {
			s := steps(implicitOpening("AUTH PLAIN"), one(script.ExpectPrefix("AUTH PLAIN "), script.Send("534 5.7.9 Authentication mechanism is too weak\r\n")))
			return []tlsmode.Candidate{playScript(srv, tlsmode.Implicit, cfg, s), playScript(srv, tlsmode.Implicit, cfg, s)}
		}, dialer: func(d *submit.Dialer) { d.FallbackDelay = time.Millisecond }, want: submit.ErrAuthFailed, auths: 1, check: smtpCode(534, false)},
		// A 4xx ends the Dial too (maddy answers a wrong password with 454):
		// the credential goes to one port per Dial, whatever the reply.
		{name: "454 to AUTH on the first port ends the Dial", cands: func(srv *submittest.Server) []tlsmode.Candidate {
			return []tlsmode.Candidate{
				playScript(srv, tlsmode.Implicit, cfg, implicitOpening("AUTH PLAIN"), one(script.ExpectPrefix("AUTH PLAIN "), script.Send("454 4.7.0 Temporary authentication failure\r\n"))),
				playScript(srv, tlsmode.StartTLS, cfg, starttlsOpening(nil, []string{"AUTH PLAIN"}), authOK),
			}
		}, want: errAny, auths: 1, check: smtpCode(454, true)},

		// Failures after the credential went out: its fate is unknown, so
		// it is not replayed on the next port.
		replayed("connection closed after the credential", one(script.Close()), errAny),
		replayed("RST after the credential", one(script.Reset()), errAny),
		replayed("malformed reply to the credential", one(script.Send("2350 ok\r\n")), submit.ErrProtocol),
		replayed("challenge to PLAIN's initial response", one(script.Send("334 \r\n"), script.Expect("*"), script.Send("501 5.7.0 cancelled\r\n")), errAny),
		replayed("250 to AUTH", one(script.Send("250 2.0.0 fine\r\n")), errAny),
		replayed("slowloris reply to the credential", one(script.SendSlowly("235 ok\r\n", 5*time.Second)), errAny),
		{name: "LOGIN prompting for the password twice", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH LOGIN"), one(
			script.Expect("AUTH LOGIN"), script.Send("334 UGFzc3dvcmQ6\r\n"), script.ExpectMatch(`^[A-Za-z0-9+/=]+$`),
			script.Send("334 UGFzc3dvcmQ6\r\n"), script.ExpectMatch(`.`), script.Send("501 5.7.0 cancelled\r\n"))),
			dialer: func(d *submit.Dialer) { d.Auth = submit.LoginAuth(hostileUser, hostilePass) }, want: errAny, auths: 1,
			check: func(t *testing.T, _ error, _ *submit.Client, conns []script.Record) {
				n, b64 := 0, base64.StdEncoding.EncodeToString([]byte(hostilePass))
				for _, c := range conns {
					for _, l := range c.Lines {
						if l.Text == b64 {
							n++
						}
					}
				}
				if n != 1 {
					t.Errorf("the password went out %d times; want once", n)
				}
			}},

		// Injection through what the caller passes.
		{name: "EHLO name with CR LF", cands: starttls(), dialer: func(d *submit.Dialer) { d.LocalName = "evil\r\nMAIL FROM:<x@example.com>" }, want: submit.ErrBadAddress},
		{name: "EHLO name with LF", cands: starttls(), dialer: func(d *submit.Dialer) { d.LocalName = "evil\nRSET" }, want: submit.ErrBadAddress},
		{name: "EHLO name with NUL", cands: starttls(), dialer: func(d *submit.Dialer) { d.LocalName = "evil\x00" }, want: submit.ErrBadAddress},
		{name: "sender with CR LF", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK), send: hostileMsg, from: "a@example.com>\r\nRCPT TO:<victim@example.com", want: submit.ErrBadAddress, auths: 1, forbid: []string{"MAIL", "RCPT"}},
		{name: "recipient with LF", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK), send: hostileMsg, to: "b@example.com\nDATA", want: submit.ErrBadAddress, auths: 1, forbid: []string{"MAIL", "RCPT"}},
		{name: "recipient with NUL", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK), send: hostileMsg, to: "b@example.com\x00", want: submit.ErrBadAddress, auths: 1, forbid: []string{"MAIL", "RCPT"}},

		// SMTP smuggling: no body can end DATA early.
		smuggled("\n.\r\n"),
		smuggled("\r\n.\r"),
		smuggled("\n.\n"),
		smuggled("\r.\r"),
		{name: "body with bare CR", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK, toData, one(script.ExpectData(), script.Send("250 ok\r\n"))),
			send: "Subject: cr\r\n\r\na\rb\r.\r", auths: 1, wantData: "Subject: cr\r\n\r\na\r\nb\r\n.\r\n"},
		{name: "body line over 1000 bytes", cands: scripted(tlsmode.Implicit, implicitOpening("AUTH PLAIN"), authOK, toData, one(script.ExpectData(), script.Send("250 ok\r\n"))),
			send: "Subject: long\r\n\r\n" + strings.Repeat("z", 1001) + "\r\n", want: submit.ErrLineTooLong, auths: 1,
			check: func(t *testing.T, err error, _ *submit.Client, conns []script.Record) {
				errText("line 3")(t, err, nil, nil)
				for _, c := range conns {
					if len(c.Messages) != 0 {
						t.Errorf("the server received a complete message: %q", c.Messages)
					}
				}
			}},
	}
}

func TestHostileServers(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			srv := submittest.NewServer(t, submittest.Options{Accounts: map[string]string{hostileUser: hostilePass}})
			cands := tc.cands(srv)
			modes := map[int]tlsmode.Mode{}
			for _, c := range cands {
				modes[c.Port] = c.Mode
			}
			d := &submit.Dialer{
				Candidates:    cands,
				TLSConfig:     srv.ClientTLSConfig(),
				Auth:          submit.PasswordAuth(hostileUser, hostilePass),
				Timeout:       3 * time.Second,
				FallbackDelay: 50 * time.Millisecond,
			}
			if tc.dialer != nil {
				tc.dialer(d)
			}
			within := tc.within
			if within == 0 {
				within = 4 * time.Second
			}

			start := time.Now()
			c, err := d.Dial(context.Background(), "127.0.0.1")
			if err == nil && tc.send != "" {
				from, to, st := tc.from, tc.to, tc.sendTimeout
				if from == "" {
					from = "a@example.com"
				}
				if to == "" {
					to = "b@example.com"
				}
				if st == 0 {
					st = 2 * time.Second
				}
				ctx, cancel := context.WithTimeout(context.Background(), st)
				err = c.Send(ctx, from, []string{to}, strings.NewReader(tc.send))
				cancel()
			}
			elapsed := time.Since(start)
			t.Logf("after %s: %v", elapsed.Round(time.Millisecond), err)
			if c != nil {
				defer c.Close()
			}

			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("err = %v; want success", err)
			case tc.want == errAny && err == nil, tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
			if elapsed > within {
				t.Errorf("the call took %s; want at most %s", elapsed, within)
			}
			if err != nil {
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error shows secret %q: %v", s, err)
					}
				}
			}

			// Close our side so the servers record every line we sent.
			if c != nil {
				c.Close()
			}
			var conns []script.Record
			for _, cd := range cands {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				sc, werr := srv.WaitScripts(ctx, cd)
				cancel()
				if werr != nil {
					t.Fatal(werr)
				}
				conns = append(conns, sc...)
			}
			assertHostileWire(t, srv, modes, tc.auths, tc.forbid)
			for _, sc := range conns {
				if tc.want == nil && sc.Err != nil {
					t.Errorf("a successful session went off its script: %v", sc.Err)
				}
				for i, l := range sc.Lines {
					if strings.EqualFold(l.Text, "STARTTLS") && (l.TLS || i > 0 && slicesHasSTARTTLS(sc.Lines[:i])) {
						t.Errorf("STARTTLS sent twice or under TLS: %+v", sc.Lines)
					}
				}
			}
			if tc.wantData != "" {
				var got []string
				for _, sc := range conns {
					for _, m := range sc.Messages {
						got = append(got, string(m))
					}
				}
				if len(got) != 1 || got[0] != tc.wantData {
					t.Errorf("server received %q; want exactly %q", got, tc.wantData)
				}
			}
			if tc.check != nil {
				tc.check(t, err, c, conns)
			}
		})
	}
}

func slicesHasSTARTTLS(lines []script.Line) bool {
	for _, l := range lines {
		if strings.EqualFold(l.Text, "STARTTLS") {
			return true
		}
	}
	return false
}

// assertHostileWire checks what every server saw: before TLS only EHLO,
// STARTTLS and QUIT on StartTLS ports and nothing secret anywhere; no
// forbidden command at all; at most auths AUTH commands in total, and at
// most one per connection.
func assertHostileWire(t *testing.T, srv *submittest.Server, modes map[int]tlsmode.Mode, auths int, forbid []string) {
	t.Helper()
	total := 0
	for _, rec := range srv.Conns() {
		mode, ours := modes[port(rec.Addr)]
		if !ours {
			continue // the server's own well-behaved listeners
		}
		// After STARTTLS, the clear bytes are the ClientHello; a connection
		// that starts with one is the Dialer checking whether a silent
		// STARTTLS port speaks implicit TLS.
		handshake := len(rec.Clear) > 0 && strings.HasPrefix(rec.Clear[0], "\x16\x03")
		for _, l := range rec.Clear {
			u := strings.ToUpper(l)
			if mode == tlsmode.StartTLS && !handshake && !(strings.HasPrefix(u, "EHLO ") || u == "STARTTLS" || u == "QUIT") {
				t.Errorf("port %s: sent in clear: %q", rec.Addr, l)
			}
			handshake = handshake || u == "STARTTLS"
			for _, s := range secrets {
				if strings.Contains(l, s) {
					t.Errorf("port %s: secret %q sent in clear", rec.Addr, s)
				}
			}
			for _, p := range []string{"AUTH", "MAIL", "RCPT", "DATA"} {
				if strings.HasPrefix(u, p) {
					t.Errorf("port %s: %q sent in clear", rec.Addr, l)
				}
			}
		}
		n := 0
		for _, cmd := range rec.Commands {
			u := strings.ToUpper(cmd)
			if strings.HasPrefix(u, "AUTH ") {
				n++
			}
			for _, p := range forbid {
				if strings.HasPrefix(u, strings.ToUpper(p)) {
					t.Errorf("port %s: forbidden command %q reached the server", rec.Addr, cmd)
				}
			}
		}
		if n > 1 {
			t.Errorf("port %s: %d AUTH commands on one connection", rec.Addr, n)
		}
		total += n
	}
	if total != auths {
		t.Errorf("servers saw %d AUTH commands; want %d", total, auths)
	}
}
