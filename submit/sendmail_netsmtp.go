package submit

import (
	"context"
	"fmt"
	netsmtp "net/smtp"

	"github.com/emersion/go-sasl"
)

// netSMTPAuth drives a net/smtp Auth as the SASL client of a portwise
// session, so SendMail takes the same auth values as net/smtp.SendMail.
type netSMTPAuth struct{ a netsmtp.Auth }

// Start shows the Auth what net/smtp would, except that TLS is true only
// on verified TLS (the Dialer calls Auths on nothing else) and the
// mechanisms are the ones advertised after TLS.
func (n netSMTPAuth) Start(_ context.Context, info *AuthInfo) (sasl.Client, error) {
	return &netSMTPClient{a: n.a, info: &netsmtp.ServerInfo{
		Name: info.Host,
		TLS:  info.TLS != nil,
		Auth: info.Mechanisms,
	}}, nil
}

type netSMTPClient struct {
	a    netsmtp.Auth
	info *netsmtp.ServerInfo
}

func (c *netSMTPClient) Start() (string, []byte, error) {
	mech, ir, err := c.a.Start(c.info)
	if err != nil {
		// net/smtp.PlainAuth says "wrong host name" when its host is not
		// the host part of addr: name what it was shown.
		return "", nil, fmt.Errorf("the net/smtp Auth refused to start with ServerInfo{Name: %q, TLS: %v} (the host given to smtp.PlainAuth must be the host part of addr): %w", c.info.Name, c.info.TLS, err)
	}
	if len(ir) == 0 {
		// net/smtp sends no initial response for an empty one; "AUTH
		// LOGIN =" would confuse servers that expect a bare "AUTH LOGIN".
		ir = nil
	}
	return mech, ir, err
}

func (c *netSMTPClient) Next(challenge []byte) ([]byte, error) {
	return c.a.Next(challenge, true)
}
