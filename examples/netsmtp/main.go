// Command netsmtp is a program written for net/smtp and migrated to
// portwise by changing one line: smtp.SendMail became submit.SendMail.
// notifyWithNetSMTP is the program as it was; notify is the program now.
// Same arguments, same net/smtp Auth; but where net/smtp carries on in
// clear when STARTTLS is stripped, portwise refuses.
//
//	SMTP_PASSWORD=secret go run ./examples/netsmtp -addr smtp.example.com:587 -user me@example.com -to you@example.com
//
// -netsmtp runs the old code, for comparison. Without a port in -addr,
// portwise tries 587, 465 and 2525 (net/smtp needs a port).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/smtp"
	"os"
	"time"

	"github.com/portwise/portwise/submit"
)

// config is what the program sends and where.
type config struct {
	addr       string // host:port, or host alone for portwise
	user, pass string // no AUTH when user is ""
	from, to   string
}

func (c config) host() string {
	if h, _, err := net.SplitHostPort(c.addr); err == nil {
		return h
	}
	return c.addr
}

func (c config) auth() smtp.Auth {
	if c.user == "" {
		return nil
	}
	return smtp.PlainAuth("", c.user, c.pass, c.host())
}

func (c config) message() []byte {
	return fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: nightly report\r\nDate: %s\r\n\r\nAll jobs finished.\r\n",
		c.from, c.to, time.Now().Format(time.RFC1123Z))
}

// notifyWithNetSMTP is the program before the migration.
func notifyWithNetSMTP(c config) error {
	return smtp.SendMail(c.addr, c.auth(), c.from, []string{c.to}, c.message())
}

// notify is the program after it: the one changed line is the call.
func notify(c config) error {
	return submit.SendMail(c.addr, c.auth(), c.from, []string{c.to}, c.message())
}

func main() {
	var c config
	old := flag.Bool("netsmtp", false, "send with net/smtp, as before the migration")
	flag.StringVar(&c.addr, "addr", os.Getenv("SMTP_ADDR"), "submission server, host[:port] (default $SMTP_ADDR)")
	flag.StringVar(&c.user, "user", os.Getenv("SMTP_USER"), "user name; empty for no AUTH (default $SMTP_USER)")
	flag.StringVar(&c.from, "from", "", "sender (default: -user)")
	flag.StringVar(&c.to, "to", "", "recipient")
	flag.Parse()
	c.pass = os.Getenv("SMTP_PASSWORD")
	if c.from == "" {
		c.from = c.user
	}
	if c.addr == "" || c.to == "" || c.from == "" {
		flag.Usage()
		os.Exit(2)
	}
	send := notify
	if *old {
		send = notifyWithNetSMTP
	}
	if err := send(c); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent")
}
