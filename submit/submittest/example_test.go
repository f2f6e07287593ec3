package submittest_test

import (
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/portwise/portwise/submit/submittest"
)

func Example() {
	s := submittest.NewServer(nil) // in a test: submittest.NewServer(t)
	defer s.Close()

	c, err := smtp.DialStartTLS(s.Addr(s.StartTLS), s.ClientTLSConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Auth(sasl.NewPlainClient("", "user", "pass")); err != nil {
		fmt.Println(err)
		return
	}
	body := "Subject: hello\r\n\r\nHi Bob.\r\n"
	if err := c.SendMail("alice@example.org", []string{"bob@example.net"}, strings.NewReader(body)); err != nil {
		fmt.Println(err)
		return
	}
	c.Quit()

	m := s.Messages()[0]
	fmt.Println(m.From, m.To, m.AuthUser, m.TLS)
	fmt.Printf("%q\n", m.Data)
	fmt.Println(s.Conns()[0].Clear)
	// Output:
	// alice@example.org [bob@example.net] user true
	// "Subject: hello\r\n\r\nHi Bob.\r\n"
	// [EHLO localhost STARTTLS]
}
