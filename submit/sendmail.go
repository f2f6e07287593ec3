package submit

import (
	"bytes"
	"context"
	netsmtp "net/smtp"
)

// SendMail is a drop-in for net/smtp.SendMail: same parameters, and the
// same auth values (net/smtp.PlainAuth, CRAMMD5Auth or your own) work, so
// replacing "smtp.SendMail(" with "submit.SendMail(" is the whole
// migration. Unlike net/smtp it never continues in clear: STARTTLS is
// mandatory (ErrSTARTTLSStripped), the certificate must verify against the
// system roots (SSL_CERT_FILE and SSL_CERT_DIR are honoured), and
// credentials only travel over verified TLS.
//
// addr with a port uses that port: implicit TLS on 465, STARTTLS on any
// other. addr without a port tries 587, 465 and 2525 (tlsmode.Default).
// The Auth sees ServerInfo{Name: the host part of addr, TLS: true on
// verified TLS, Auth: the mechanisms advertised after TLS}.
//
// Once the server accepted the message SendMail returns nil, whatever
// becomes of the QUIT that follows: returning an error there would invite a
// duplicate. For connection reuse, options and results use a Dialer with
// a Mailer or Client.
func SendMail(addr string, a netsmtp.Auth, from string, to []string, msg []byte) error {
	d := &Dialer{}
	if a != nil {
		d.Auth = FromNetSMTP(a)
	}
	ctx := context.Background()
	c, err := d.Dial(ctx, addr)
	if err != nil {
		return err
	}
	err = c.Send(ctx, from, to, bytes.NewReader(msg))
	c.Quit() // closes at once when the connection broke
	return err
}
