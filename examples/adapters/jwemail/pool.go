package jwemail

import (
	"context"
	"crypto/tls"
	"errors"
	netsmtp "net/smtp"
	"time"

	"github.com/jordan-wright/email"

	"github.com/portwise/portwise/submit"
)

// DefaultTimeout bounds one Pool.Send whose timeout is zero.
const DefaultTimeout = 2 * time.Minute

// Pool has the shape of email.Pool, Send(e, timeout) and Close(), over a
// portwise Mailer: connections are authenticated once and reused, at most
// MaxConns of them, and a rejected credential is never tried again. It is
// safe for concurrent use.
type Pool struct {
	Mailer *submit.Mailer
}

// NewPool takes email.NewPool's arguments: address is host:port, whose
// TLS mode portwise finds (STARTTLS, then implicit TLS; the other way round
// on 465), or a host alone, for which portwise races 587, 465 and 2525;
// count bounds the open connections; auth is a net/smtp Auth (nil: none);
// tlsConfig, if given, verifies the server (its RootCAs and ServerName),
// and without it the system roots verify the host of address. Unlike
// email.Pool's, nothing goes in clear: a server that does not offer
// STARTTLS, or whose offer was stripped, gets no message and no password.
func NewPool(address string, count int, auth netsmtp.Auth, tlsConfig ...*tls.Config) (*Pool, error) {
	if count <= 0 {
		return nil, errors.New("jwemail: NewPool needs a positive count of connections")
	}
	if len(tlsConfig) > 1 {
		return nil, errors.New("jwemail: NewPool takes at most one tls.Config")
	}
	d := &submit.Dialer{}
	if auth != nil {
		d.Auth = submit.FromNetSMTP(auth)
	}
	if len(tlsConfig) == 1 && tlsConfig[0] != nil {
		d.TLSConfig = tlsConfig[0].Clone()
	}
	return &Pool{Mailer: &submit.Mailer{Dialer: d, Host: address, MaxConns: count, MaxIdle: count}}, nil
}

// SetHelloHostname sets the name sent with EHLO, as email.Pool's does.
// Call it before the first Send.
func (p *Pool) SetHelloHostname(h string) {
	p.Mailer.Dialer.LocalName = h
}

// Send sends e over one of the pool's connections. timeout bounds the
// whole send, waiting for a connection and connecting included, where
// email.Pool's bounds only the wait for a connection; a negative timeout
// means none beyond the Dialer's own, zero means DefaultTimeout.
//
// Errors are portwise's, not email.ErrTimeout or email.ErrClosed: a send
// after Close fails with submit.ErrMailerClosed, a message the server may
// or may not have with submit.ErrOutcomeUnknown. Such a message is never
// sent again by the pool; sending it again is the caller's decision.
func (p *Pool) Send(e *email.Email, timeout time.Duration) error {
	ctx := context.Background()
	if timeout >= 0 {
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return Send(ctx, p.Mailer, e)
}

// Close closes the idle connections with QUIT and makes later sends
// fail; as email.Pool's, it returns nothing.
func (p *Pool) Close() {
	p.Mailer.Close() // always nil
}
