package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// job is what a client process is asked to do: send messages to Addr over
// Conns connections at once, the message read from Msg, as many as each
// line of its stdin says.
type job struct {
	Addr, From, To, Msg string
	Conns               int
	Profile             string // write a CPU profile of the process here
}

// result is what a client process reports on its stdout, as JSON. Seconds
// and CPU cover the same window: from before the first connection to the
// last message accepted, without the process's start or its QUITs.
type result struct {
	Sent    int     `json:"sent"`
	Seconds float64 `json:"seconds"`
	CPU     float64 `json:"cpu"` // user + system, every thread of the process
}

// A sender sends messages over a number of connections: each of that many
// goroutines calls run with its index, which sends a message every time
// next allows. The connections stay open from one call to the next.
type sender interface {
	run(ctx context.Context, worker int, next func() bool) error
	// between is called after each window: the wait for the next slice
	// may be long (other clients' slices, a busy machine).
	between()
	// close ends the connections, after the measured windows.
	close()
}

// goClients are the clients that run in this program's own process (-client).
var goClients = map[string]func(j job, msg []byte) (sender, error){
	"mailer-bdat": func(j job, msg []byte) (sender, error) { return newMailer(j, msg, nil) },
	"mailer-data": func(j job, msg []byte) (sender, error) {
		return newMailer(j, msg, &submit.SendOptions{NoChunking: true})
	},
	"go-mail":  newGoMail,
	"net/smtp": newNetSMTP,
}

// runClient is the client process: for each number on its stdin, it sends
// that many messages with the named client over the connections it keeps,
// and prints a result; at the end of its stdin it closes them.
func runClient(name string, j job) error {
	newSender, ok := goClients[name]
	if !ok {
		return fmt.Errorf("unknown Go client %q", name)
	}
	msg, err := os.ReadFile(j.Msg)
	if err != nil {
		return err
	}
	s, err := newSender(j, msg)
	if err != nil {
		return err
	}
	defer s.close()
	if j.Profile != "" {
		f, err := os.Create(j.Profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		n, err := strconv.Atoi(in.Text())
		if err != nil {
			return fmt.Errorf("bad count %q", in.Text())
		}
		r, err := sendN(s, j.Conns, n)
		if err != nil {
			return err
		}
		if err := out.Encode(r); err != nil {
			return err
		}
		s.between()
	}
	return in.Err()
}

// sendN sends n messages from conns goroutines and measures the window.
func sendN(s sender, conns, n int) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var taken atomic.Int64
	next := func() bool { return taken.Add(1) <= int64(n) }
	cpu0, t0 := cpuNow(), time.Now()
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			if errs[i] = s.run(ctx, i, next); errs[i] != nil {
				cancel() // one failure ends the run
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(t0), cpuNow()-cpu0
	if err := errors.Join(errs...); err != nil {
		return result{}, err
	}
	return result{Sent: n, Seconds: elapsed.Seconds(), CPU: cpu}, nil
}

// cpuNow is the CPU time this process has used, user and system, in
// seconds.
func cpuNow() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

// mailerSender is portwise's Mailer: one pool of Conns connections that
// every goroutine sends through, with its defaults otherwise (a
// connection is replaced after 100 messages, as Nodemailer's pool does).
// MaxIdle is raised with MaxConns: with the default 2, the pool would
// close every connection beyond two between sends.
type mailerSender struct {
	m    *submit.Mailer
	j    job
	msg  []byte
	opts *submit.SendOptions
}

func newMailer(j job, msg []byte, opts *submit.SendOptions) (sender, error) {
	host, port, err := splitAddr(j.Addr)
	if err != nil {
		return nil, err
	}
	m := &submit.Mailer{
		Dialer: &submit.Dialer{
			Candidates: []tlsmode.Candidate{{Port: port, Mode: tlsmode.Plaintext}},
			LocalName:  "localhost",
		},
		Host:     host,
		MaxConns: j.Conns,
		MaxIdle:  j.Conns,
	}
	return &mailerSender{m: m, j: j, msg: msg, opts: opts}, nil
}

func (s *mailerSender) run(ctx context.Context, _ int, next func() bool) error {
	for next() {
		if _, err := s.m.SendWith(ctx, s.j.From, []string{s.j.To}, bytes.NewReader(s.msg), s.opts); err != nil {
			return err
		}
	}
	return nil
}

func (s *mailerSender) between() {} // the pool checks an idle connection with NOOP, or replaces it

func (s *mailerSender) close() { s.m.Close() }

// netSMTPSender is net/smtp as its users write it: a Client per
// connection, each message MAIL, RCPT, DATA and the text, one reply at a
// time.
type netSMTPSender struct {
	j       job
	msg     []byte
	clients []*smtp.Client // by worker; dialled at its first message
}

func newNetSMTP(j job, msg []byte) (sender, error) {
	return &netSMTPSender{j: j, msg: msg, clients: make([]*smtp.Client, j.Conns)}, nil
}

func (s *netSMTPSender) run(ctx context.Context, worker int, next func() bool) error {
	for next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := s.clients[worker]
		if c == nil {
			var err error
			if c, err = smtp.Dial(s.j.Addr); err != nil {
				return err
			}
			s.clients[worker] = c
			if err := c.Hello("localhost"); err != nil {
				return err
			}
		}
		if err := c.Mail(s.j.From); err != nil {
			return err
		}
		if err := c.Rcpt(s.j.To); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(s.msg); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}

// between closes the connections, to be dialled again at the next slice:
// on a busy machine the wait may outlast Postfix's smtpd_timeout (300 s),
// and net/smtp has nothing to notice a connection the server dropped.
func (s *netSMTPSender) between() { s.close() }

func (s *netSMTPSender) close() {
	for i, c := range s.clients {
		if c != nil {
			c.Quit()
			s.clients[i] = nil
		}
	}
}

// goMailSender is go-mail as its users write it: a Client per connection
// (a Client holds one), and a Msg composed for each message. Its defaults
// stay: Send checks the connection with NOOP first, and ends each message
// with another NOOP and RSET; and the connection's deadline is 15 s from
// its last use (WithTimeout), so its connections are closed after each
// slice and dialled again, in the window, at the next.
type goMailSender struct {
	j       job
	host    string
	port    int
	raw     []byte
	clients []*mail.Client // by worker; dialled at its first message
}

func newGoMail(j job, msg []byte) (sender, error) {
	host, port, err := splitAddr(j.Addr)
	if err != nil {
		return nil, err
	}
	if _, err := goMailMsg(j.From, j.To, msg); err != nil {
		return nil, err
	}
	return &goMailSender{j: j, host: host, port: port, raw: msg, clients: make([]*mail.Client, j.Conns)}, nil
}

func (s *goMailSender) run(ctx context.Context, worker int, next func() bool) error {
	for next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := s.clients[worker]
		if c == nil {
			var err error
			c, err = mail.NewClient(s.host, mail.WithPort(s.port), mail.WithTLSPolicy(mail.NoTLS), mail.WithHELO("localhost"))
			if err != nil {
				return err
			}
			if err := c.DialWithContext(ctx); err != nil {
				return err
			}
			s.clients[worker] = c
		}
		m, err := goMailMsg(s.j.From, s.j.To, s.raw)
		if err != nil {
			return err
		}
		if err := c.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func (s *goMailSender) between() { s.close() }

func (s *goMailSender) close() {
	for i, c := range s.clients {
		if c != nil {
			c.Close()
			s.clients[i] = nil
		}
	}
}
