package submit_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// TestKindNames pins the names of the kinds: they are what programs log
// and what telemetry records, so a rename breaks this test first.
func TestKindNames(t *testing.T) {
	want := map[submit.Kind]string{
		submit.KindNone: "none", submit.KindOther: "other", submit.KindCanceled: "canceled",
		submit.KindDeadline: "deadline", submit.KindUnreachable: "unreachable", submit.KindConnection: "connection",
		submit.KindInsecure: "insecure", submit.KindCertificate: "certificate", submit.KindConfig: "config",
		submit.KindCredential: "credential", submit.KindProtocol: "protocol", submit.KindOutcomeUnknown: "outcome_unknown",
		submit.KindRefused: "refused", submit.KindAuthRequired: "auth_required", submit.KindSender: "sender",
		submit.KindRecipientUnknown: "recipient_unknown", submit.KindMailboxFull: "mailbox_full",
		submit.KindTooManyRecipients: "too_many_recipients", submit.KindGreylisted: "greylisted",
		submit.KindContent: "content", submit.KindQuota: "quota", submit.KindRateLimited: "rate_limited",
		submit.KindAccount: "account",
	}
	seen := map[string]bool{}
	for k, name := range want {
		if k.String() != name {
			t.Errorf("Kind %d is %q; want %q", k, k.String(), name)
		}
		if seen[name] {
			t.Errorf("two kinds are %q", name)
		}
		seen[name] = true
	}
	if got := submit.Kind(len(want)).String(); got != fmt.Sprintf("Kind(%d)", len(want)) {
		t.Errorf("a kind past the last is %q: a new kind needs its name pinned here", got)
	}
}

// TestKindOf covers errors that reach a program without a server's reply.
func TestKindOf(t *testing.T) {
	step := func(name string, err error) error { return &submit.StepError{Step: name, Err: err} }
	leaf := &x509.Certificate{}
	tests := []struct {
		err  error
		want submit.Kind
	}{
		{nil, submit.KindNone},
		{errors.New("something else"), submit.KindOther},
		{context.Canceled, submit.KindCanceled},
		{fmt.Errorf("send: %w", context.DeadlineExceeded), submit.KindDeadline},
		{step("connect", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}), submit.KindUnreachable},
		{step("connect", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), submit.KindUnreachable},
		{step("ehlo", io.EOF), submit.KindConnection},
		{step("tls", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), submit.KindConnection},
		{step("tls", &tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{leaf}, Err: x509.UnknownAuthorityError{Cert: leaf}}), submit.KindCertificate},
		{step("starttls", submit.ErrSTARTTLSStripped), submit.KindInsecure},
		{fmt.Errorf("dial: %w", step("auth", submit.ErrAuthFailed)), submit.KindCredential},
		{step("banner", submit.ErrWrongMode), submit.KindConfig},
		{fmt.Errorf("%w: oops", submit.ErrTokenUnavailable), submit.KindCredential},
		{fmt.Errorf("%w: line 3", submit.ErrLineTooLong), submit.KindContent},
		{submit.ErrMailerClosed, submit.KindCanceled},
		{fmt.Errorf("%w: the connection broke", submit.ErrOutcomeUnknown), submit.KindOutcomeUnknown},
		{&submit.DialError{Host: "h", Attempts: []submit.Attempt{{Candidate: tlsmode.Candidate{Port: 587, Mode: tlsmode.StartTLS}, Err: step("connect", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})}}}, submit.KindUnreachable},
		{&submit.SendError{Rejected: []submit.RecipientError{
			{Addr: "grey@example.org", Reply: &submit.Reply{Code: 450, Enhanced: "4.2.0", Text: "Greylisted"}},
			{Addr: "gone@example.org", Reply: &submit.Reply{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}},
		}}, submit.KindRecipientUnknown},
		{submit.RecipientError{Addr: "full@example.org", Reply: &submit.Reply{Code: 552, Enhanced: "5.2.2", Text: "Mailbox full"}}, submit.KindMailboxFull},
	}
	for _, tt := range tests {
		if got := submit.KindOf(tt.err); got != tt.want {
			t.Errorf("KindOf(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}
