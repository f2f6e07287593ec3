package diag

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portwise/portwise/internal/golden"
	"github.com/portwise/portwise/internal/session"
	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func mkReply(code int, lines ...string) *wire.Reply { return &wire.Reply{Code: code, Lines: lines} }

// cert returns a self-signed leaf for names, valid from notBefore for a
// year (or already expired).
func cert(t *testing.T, expired bool, names ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.AddDate(1, 0, 0)
	if expired {
		nb, na = nb.AddDate(-2, 0, 0), nb.AddDate(-1, 0, 0)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, Issuer: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGoldenMessages prints the exact message of every kind of failure,
// as a Go programmer reads it in an error and as a person at the command
// line reads it, with its headline, whether it is temporary and its
// sentinel. Every Kind must appear. go test -run Golden -update rewrites
// testdata/kinds.golden after review.
func TestGoldenMessages(t *testing.T) {
	S := tlsmode.Candidate{Port: 587, Mode: tlsmode.StartTLS}
	I := tlsmode.Candidate{Port: 465, Mode: tlsmode.Implicit}
	leaf := cert(t, false, "mail.example.com")
	old := cert(t, true, "mail.example.com")
	unknown := &tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{leaf}, Err: x509.UnknownAuthorityError{Cert: leaf}}
	name := &tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{leaf}, Err: x509.HostnameError{Certificate: leaf, Host: "smtp.example.com"}}
	expired := &tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{old}, Err: x509.CertificateInvalidError{Cert: old, Reason: x509.Expired}}
	cases := []struct {
		name string
		step string
		c    tlsmode.Candidate
		host string
		err  error
	}{
		{"other", "ehlo", S, "", errors.New("something else")},
		{"canceled", "tls", S, "", context.Canceled},
		{"deadline", "banner", S, "", context.DeadlineExceeded},
		{"lost-race", "", I, "", ErrLostRace},
		{"dial-ended", "", I, "", ErrDialEnded},
		{"config", "", tlsmode.Candidate{}, "", Configf("submit: Dialer.Auth is a nil *submit.oauthAuth: set an Auth, or leave Dialer.Auth nil for no AUTH")},
		{"bad-input", "", tlsmode.Candidate{}, "", fmt.Errorf("submit: recipient address %q holds CR, LF, NUL or an angle bracket, which would inject a command: %w", "a@b\r\nRSET", ErrBadAddress)},
		{"token", "token", tlsmode.Candidate{}, "", fmt.Errorf("%w for me@example.com: oauth2: \"invalid_grant\" \"Token has been expired or revoked.\"", ErrTokenUnavailable)},
		{"dns", "connect", S, "nodomain.invalid", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "nodomain.invalid", IsNotFound: true}}},
		{"refused", "connect", S, "", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
		{"blocked", "connect", S, "", ErrTimeout},
		{"silent banner", "banner", S, "", ErrTimeout},
		{"silent implicit", "tls", I, "", ErrTimeout},
		{"network", "connect", S, "", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}},
		{"closed", "ehlo", S, "", io.EOF},
		{"reset", "auth", I, "", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}},
		{"reset during the TLS handshake", "tls", I, "", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}},
		{"closed during the TLS handshake", "tls", S, "", io.EOF},
		{"timeout", "ehlo", S, "", ErrTimeout},
		{"protocol", "banner", S, "", fmt.Errorf("%w: reply line \"2200 hi\" has \"0\" after its code", wire.ErrProtocol)},
		{"wrong-mode implicit stated", "tls", I, "", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake", RecordHeader: [5]byte{'2', '2', '0', ' ', 'm'}}},
		{"wrong-mode starttls stated", "banner", S, "", &WrongModeError{Port: 587, Stated: tlsmode.StartTLS, Speaks: tlsmode.Implicit, Seen: "it answered a TLS handshake, TLS 1.3, and sent no greeting in clear"}},
		{"stripped", "starttls", S, "", &session.StrippedError{Reason: "port 587 did not advertise STARTTLS (EHLO offered: AUTH PLAIN, PIPELINING); on a submission port this means a downgrade attack or a server without TLS; portwise will not continue in clear"}},
		{"masked", "starttls", S, "", &session.StrippedError{Masked: "XXXXXXXA", Reason: "the EHLO reply has \"XXXXXXXA\" where STARTTLS belongs: STARTTLS appears to have been stripped by a middlebox (a firewall's SMTP inspection, or an attacker); portwise will not continue in clear"}},
		{"starttls refused", "starttls", S, "", fmt.Errorf("%w: the server answered STARTTLS with %w; portwise will not continue in clear", session.ErrRejected, mkReply(454, "4.7.0 TLS not available").Err("STARTTLS"))},
		{"injection", "tls", S, "", fmt.Errorf("%w (12 bytes: \"250 AUTH PLAIN\")", wire.ErrInjection)},
		{"tls-version", "tls", S, "", &net.OpError{Op: "remote error", Err: errors.New("tls: protocol version not supported")}},
		{"tls-alert", "tls", I, "", &net.OpError{Op: "remote error", Err: errors.New("tls: internal error")}},
		{"tls-failed", "tls", I, "", errors.New("tls: handshake failure")},
		{"cert-untrusted", "tls", S, "smtp.example.com", unknown},
		{"cert-name", "tls", S, "smtp.example.com", name},
		{"cert-expired", "tls", S, "smtp.example.com", expired},
		{"cert-unverified", "tls", S, "", Configf("%w: TLSConfig.InsecureSkipVerify is set without a VerifyConnection callback, so the server is unauthenticated", ErrCertificate)},
		{"plaintext-auth", "auth", tlsmode.Candidate{Port: 25, Mode: tlsmode.Plaintext}, "", Configf("port 25 is configured as plaintext, and credentials never travel in clear: %w", ErrPlaintextAuth)},
		{"auth-unavailable", "auth", S, "", fmt.Errorf("%w: PLAIN or LOGIN needed, the server offers NTLM GSSAPI after TLS", ErrMechanismUnavailable)},
		{"auth-rejected", "auth", S, "mail.example.com", mkReply(535, "5.7.8 Error: authentication failed: authentication failure").Err("AUTH PLAIN")},
		{"auth-rejected gmail", "auth", S, "smtp.gmail.com", mkReply(534, "5.7.9 Application-specific password required. For more information, go to", "5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor d2-20020a05 - gsmtp").Err("AUTH PLAIN")},
		{"auth-rejected microsoft 365", "auth", S, "smtp.office365.com", mkReply(535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [AM0PR01CA0100.eurprd01.prod.exchangelabs.com]").Err("AUTH LOGIN")},
		{"auth-rejected xoauth2", "auth", S, "smtp.gmail.com", &wire.ReplyError{Command: "AUTH XOAUTH2", Reply: mkReply(535, "5.7.8 Username and Password not accepted. For more information, go to", "5.7.8  https://support.google.com/mail/?p=BadCredentials d2-20020a05 - gsmtp"), Note: "the server says: status \"401\", scope \"https://mail.google.com/\""}},
		{"auth-temporary", "auth", S, "", mkReply(454, "4.7.0 Temporary authentication failure").Err("AUTH PLAIN")},
		{"auth-broken", "auth", I, "", fmt.Errorf("%w: LOGIN: the server prompted \"Domain:\", which asks for neither the user name nor the password", wire.ErrAuthAborted)},
		{"auth-broken reply", "auth", I, "", mkReply(250, "2.0.0 fine").Err("AUTH PLAIN")},
		{"refused-temporary greeting", "banner", S, "", mkReply(421, "4.7.0 mail.example.com Too many connections, try again later").Err("")},
		{"refused-temporary ehlo", "ehlo", S, "", mkReply(451, "4.3.0 Temporary lookup failure").Err("EHLO")},
		{"refused-permanent greeting", "banner", S, "", mkReply(554, "5.7.1 No SMTP service here").Err("")},
		{"refused-permanent mail", "MAIL FROM", S, "", mkReply(553, "5.7.1 <a@example.org>: Sender address rejected: not owned by user alice").Err("MAIL FROM")},
		{"refused-permanent ses", "message", S, "email-smtp.eu-west-1.amazonaws.com", mkReply(554, "Message rejected: Email address is not verified. The following identities failed the check in region EU-WEST-1: a@example.org").Err("message")},
		{"outcome-unknown", "message", I, "", fmt.Errorf("%w: the connection broke after the message was sent and before the server answered (EOF); it may or may not have been accepted", ErrOutcomeUnknown)},
	}
	seen := make(map[Kind]bool)
	var b strings.Builder
	for _, tc := range cases {
		d := Classify(tc.step, tc.c, tc.host, 10*time.Second, tc.err)
		seen[d.Kind] = true
		sentinel := "-"
		if s := Sentinel(d.Kind); s != nil {
			sentinel = s.Error()
		}
		fmt.Fprintf(&b, "## %s\nkind: %s; headline: %s; temporary: %v; sentinel: %s\nline: %s\ngo:   %s\ncli:  %s\n\n",
			tc.name, d.Kind, Headline(d.Kind), d.Temporary(), sentinel, d.Line(), d.Advice(Go), d.Advice(CLI))
		for _, s := range []string{d.Line(), d.Advice(Go), d.Advice(CLI)} {
			if strings.ContainsAny(s, "\r\n") {
				t.Errorf("%s: more than one line: %q", tc.name, s)
			}
		}
	}
	for _, k := range Kinds() {
		if !seen[k] {
			t.Errorf("no case of kind %s", k)
		}
	}
	golden.Check(t, "kinds.golden", []byte(b.String()), *update, "go test ./internal/diag -run Golden")
}
