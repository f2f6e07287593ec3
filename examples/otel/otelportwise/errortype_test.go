package otelportwise_test

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

	"github.com/portwise/portwise/examples/otel/otelportwise"
	"github.com/portwise/portwise/submit"
)

func TestErrorType(t *testing.T) {
	step := func(err error) error { return &submit.StepError{Step: "connect", Err: err} }
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{step(submit.ErrSTARTTLSStripped), "starttls_stripped"},
		{fmt.Errorf("dial: %w", step(submit.ErrAuthFailed)), "auth_failed"},
		{&submit.StepError{Step: "auth", Reply: &submit.Reply{Code: 535}, Err: submit.ErrAuthFailed}, "auth_failed"},
		{&submit.StepError{Step: "banner", Reply: &submit.Reply{Code: 421}, Err: &submit.Reply{Code: 421}}, "refused"},
		{&submit.StepError{Step: "RCPT TO", Reply: &submit.Reply{Code: 450, Enhanced: "4.2.0", Text: "Greylisted"}, Err: &submit.Reply{Code: 450, Enhanced: "4.2.0", Text: "Greylisted"}}, "greylisted"},
		{&submit.SendError{Rejected: []submit.RecipientError{{Addr: "b@example.com", Reply: &submit.Reply{Code: 550, Text: "Requested action not taken: mailbox unavailable\nFailure sending mail. Try again later"}}}}, "rate_limited"},
		{&submit.SendError{Rejected: []submit.RecipientError{{Addr: "b@example.com", Reply: &submit.Reply{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}}}}, "recipient_unknown"},
		{step(submit.ErrCertificate), "certificate"},
		{step(submit.ErrWrongMode), "wrong_mode"},
		{step(submit.ErrProtocol), "protocol"},
		{step(context.Canceled), "canceled"},
		{step(context.DeadlineExceeded), "deadline"},
		{x509.UnknownAuthorityError{}, "certificate"},
		{&tls.CertificateVerificationError{Err: x509.HostnameError{}}, "certificate"},
		{tls.AlertError(40), "insecure"},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid"}}, "unreachable"},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "unreachable"},
		{os.ErrDeadlineExceeded, "connection"},
		{fmt.Errorf("read: %w", io.EOF), "connection"},
		{syscall.ECONNRESET, "connection"},
		{errors.New("something else"), "_OTHER"},
	}
	for _, tt := range tests {
		if got := otelportwise.ErrorType(tt.err); got != tt.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
