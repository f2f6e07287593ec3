package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/submit"
)

// maxBody bounds the message body read from a file or stdin.
const maxBody = 25 << 20

const defaultBody = "This is a test message sent with portwise.\n"

// addrList collects -to flags; each may hold several comma-separated
// addresses.
type addrList []string

func (l *addrList) String() string { return strings.Join(*l, ",") }

func (l *addrList) Set(s string) error {
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			*l = append(*l, a)
		}
	}
	return nil
}

func (c *cli) send(args []string) int {
	fs := flag.NewFlagSet("portwise send", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	var (
		o        common
		to       addrList
		from     = fs.String("from", "", "envelope and header sender `address` (required)")
		subject  = fs.String("subject", "portwise test", "subject line")
		bodyFile = fs.String("body-file", "", "`file` holding the body; default: stdin, or a one-line test body when stdin is a terminal")
		verbose  = fs.Bool("v", false, "print the session transcript to stderr (credentials and message redacted)")
		timeout  = fs.Duration("timeout", 30*time.Second, "budget of one connection attempt, connect through AUTH")
		timing   = fs.Bool("timing", false, "draw the port race as a waterfall: when each port started, how long each step took, which won and why the others stopped")
		asJSON   = fs.Bool("json", false, "print the outcome and -timing's figures as JSON instead of text")
	)
	fs.Var(&to, "to", "recipient `address`es, comma-separated or repeated (required)")
	o.register(fs)
	o.registerToken(fs)
	fs.Usage = func() {
		fmt.Fprintln(c.stderr, "usage: portwise send -from A -to B [flags] HOST[:PORT]\n\nSends a test message through the same port race, TLS checks and AUTH rules as submit.Dialer.\nExit status: 0 sent, 1 not sent, 2 usage error.\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if helpRequested(err) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return c.exit(usagef("send takes one HOST[:PORT], got %d arguments", len(pos)))
	}
	if err := o.resolve(c.getenv); err != nil {
		return c.exit(err)
	}
	if *from == "" || len(to) == 0 {
		return c.exit(usagef("send needs -from and -to"))
	}
	if *timeout <= 0 {
		return c.exit(usagef("-timeout must be positive"))
	}
	sender, err := mail.ParseAddress(*from)
	if err != nil {
		return c.exit(usagef("-from %q: %v", *from, err))
	}
	var rcpts []*mail.Address
	for _, a := range to {
		r, err := mail.ParseAddress(a)
		if err != nil {
			return c.exit(usagef("-to %q: %v", a, err))
		}
		rcpts = append(rcpts, r)
	}
	host, port, err := plan.SplitHost(pos[0])
	if err != nil {
		return c.exit(usagef("%v", err))
	}
	body, err := c.body(*bodyFile)
	if err != nil {
		return c.exit(err)
	}
	msg := compose(sender, rcpts, *subject, body, time.Now())

	d := &submit.Dialer{Candidates: o.selected, TLSConfig: o.tls, Auth: o.auth, Timeout: *timeout, NetDialer: o.netDialer()}
	if *verbose {
		d.Transcript = c.stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// timings prints -timing's view, or -json's document, once the send
	// is over, whatever its outcome.
	timings := func() error { return nil }
	if *timing || *asJSON {
		tm := newSendTimer(host, port, o.selected)
		d.Logger = tm.logger()
		ctx = submit.WithTrace(ctx, tm.trace())
		timings = func() error {
			tm.settle(time.Second)
			if *asJSON {
				return writeJSON(c.stdout, tm.timeline().json())
			}
			return tm.timeline().draw(c.stdout, drawOptions{width: c.width, colour: c.colour})
		}
	}
	cl, err := d.Dial(ctx, pos[0])
	if err != nil {
		timings()
		return c.exit(err)
	}
	defer cl.Close()
	var envTo []string
	for _, r := range rcpts {
		envTo = append(envTo, r.Address)
	}
	res, err := cl.SendWith(ctx, sender.Address, envTo, bytes.NewReader(msg), nil)
	if err != nil {
		cl.Close()
		timings()
		code := c.exit(err)
		if hint := relayHint(cl, o.auth, err); hint != "" {
			fmt.Fprintln(c.stderr, "portwise: "+hint)
		}
		return code
	}
	cl.Quit()
	if err := timings(); err != nil {
		return c.exit(err)
	}
	if !*asJSON {
		fmt.Fprintln(c.stdout, sentLine(cl, res, envTo))
	}
	return exitOK
}

// sentLine is the line that reports a message sent: its size as the
// server counts it (after line-ending normalisation, as SIZE= declares
// it), where it went and how, and the server's queue id.
func sentLine(cl *submit.Client, res *submit.SendResult, to []string) string {
	how := cl.Candidate().String()
	if st, ok := cl.ConnectionState(); ok {
		how += ", " + tls.VersionName(st.Version)
	}
	if m := cl.Mechanism(); m != "" {
		how += ", AUTH " + m
	}
	line := fmt.Sprintf("sent %d bytes to %s via %s (%s)", res.Size, strings.Join(to, ", "), cl.Host(), how)
	if res.QueueID != "" {
		line += ", queued as " + res.QueueID
	}
	return line
}

// relayHint is the hint for a refusal that authentication might cure: the
// server offered AUTH after TLS, and no -user was given.
func relayHint(cl *submit.Client, auth submit.Auth, err error) string {
	offered, mechs := cl.Extension("AUTH")
	if auth != nil || !offered {
		return ""
	}
	var se *submit.StepError
	var send *submit.SendError
	refused := errors.As(err, &send) || errors.As(err, &se) && se.Reply != nil && se.Reply.Code/100 == 5
	if !refused {
		return ""
	}
	return "hint: the server offers AUTH " + untrusted.Text(mechs, 80) + " after TLS and no -user was given; it may relay only for clients that authenticate: add -user NAME -password-env VAR"
}

// body reads the message body: the file, else stdin unless it is a
// terminal.
func (c *cli) body(file string) ([]byte, error) {
	var r io.Reader
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, usagef("-body-file: %v", err)
		}
		defer f.Close()
		r = f
	case c.stdinTTY || c.stdin == nil:
		return []byte(defaultBody), nil
	default:
		r = c.stdin
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if len(b) > maxBody {
		return nil, usagef("the body is larger than %d MiB", maxBody>>20)
	}
	return b, nil
}

// compose builds a plain-text RFC 5322 message. The Dialer's Send
// normalises line endings and dot-stuffs, so the body goes in as it is.
func compose(from *mail.Address, to []*mail.Address, subject string, body []byte, now time.Time) []byte {
	var b bytes.Buffer
	var rcpts []string
	for _, r := range to {
		rcpts = append(rcpts, r.String())
	}
	domain := "portwise.invalid"
	if _, d, ok := strings.Cut(from.Address, "@"); ok && d != "" {
		domain = d
	}
	id := make([]byte, 12)
	rand.Read(id)
	fmt.Fprintf(&b, "From: %s\r\n", from.String())
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(rcpts, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id), domain)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n")
	b.WriteString("X-Mailer: portwise\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}
