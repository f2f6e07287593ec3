package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portwise/portwise/internal/netem"
)

// clientProc is one client for one run. The Go clients and Nodemailer are
// a process that stays up through the run's slices: the driver writes a
// number of messages on its stdin, it sends them over the connections it
// keeps and answers with a result line; closing its stdin ends it.
// smtp-source, which takes its count on the command line, is started
// afresh for each slice. At 20 ms each client has a proxy of its own, so
// that its count of flights is its own.
type clientProc struct {
	s     *setup
	k     kase
	addr  string
	proxy *netem.Proxy

	cmd    *exec.Cmd // nil for smtp-source
	stdin  io.WriteCloser
	stdout *bufio.Scanner
	stderr *strings.Builder
	sent   int // messages sent, slices run again included
}

// start starts a client for a run; tag names its CPU profile.
func (s *setup) start(k kase, tag string) (*clientProc, error) {
	c := &clientProc{s: s, k: k, addr: s.plain}
	if k.rtt > 0 {
		p, err := netem.NewProxy(s.plain, k.rtt/2)
		if err != nil {
			return nil, err
		}
		c.addr, c.proxy = p.Addr(), p
	}
	switch k.client {
	case "smtp-source":
		return c, nil
	case "nodemailer":
		c.cmd = exec.Command(s.node, filepath.Join(s.o.nodeDir, "nodemailer.mjs"),
			"--addr", c.addr, "--conns", strconv.Itoa(k.conns), "--from", from, "--to", s.to, "--msg", s.msg)
	default:
		c.cmd = exec.Command(s.self, "-client", k.client, "-addr", c.addr, "-c", strconv.Itoa(k.conns),
			"-to", s.to, "-msg", s.msg)
		if s.o.profiles != "" {
			file := fmt.Sprintf("%s-%s-%dc-%s.pprof", strings.ReplaceAll(k.client, "/", ""), pathName(k.rtt), k.conns, tag)
			c.cmd.Args = append(c.cmd.Args, "-cpuprofile", filepath.Join(s.o.profiles, file))
		}
	}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.stdout = bufio.NewScanner(out)
	c.stderr = new(strings.Builder)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// slice has the client send n messages, and measures it: the client's
// own window and CPU, Postfix's CPU and the machine's meanwhile.
func (c *clientProc) slice(n int) (sample, error) {
	if c.proxy != nil {
		c.proxy.Reset()
	}
	self0 := cpuNow()
	srv0, err := snapServer()
	if err != nil {
		return sample{}, err
	}
	t0 := time.Now()
	var r result
	if c.cmd == nil {
		r, err = c.smtpSource(n)
	} else {
		r, err = c.ask(n)
	}
	if err != nil {
		return sample{}, err
	}
	wall := time.Since(t0).Seconds()
	srv1, err := snapServer()
	if err != nil {
		return sample{}, err
	}
	if r.Sent != n {
		return sample{}, fmt.Errorf("sent %d messages, not %d", r.Sent, n)
	}
	c.sent += n
	t := sample{
		n:       n,
		seconds: r.Seconds,
		cpu:     r.CPU,
		process: r.CPU, // smtp-source's is its whole process; close sets the others'
		wall:    wall,
		server:  serverDelta(srv0, srv1),
		machine: srv1.machine - srv0.machine,
		self:    cpuNow() - self0,
	}
	if c.proxy != nil {
		t.flights = c.proxy.ClientFlights()
	}
	return t, nil
}

// ask has a client process send n messages and reads its result.
func (c *clientProc) ask(n int) (result, error) {
	var r result
	if _, err := fmt.Fprintln(c.stdin, n); err != nil {
		return r, c.failed(err)
	}
	if !c.stdout.Scan() {
		return r, c.failed(c.stdout.Err())
	}
	if err := json.Unmarshal(c.stdout.Bytes(), &r); err != nil {
		return r, fmt.Errorf("client's report %q: %w", c.stdout.Text(), err)
	}
	return r, nil
}

// failed is the client's own account of why it stopped, if it gave one.
func (c *clientProc) failed(err error) error {
	c.stdin.Close()
	werr := c.cmd.Wait()
	if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
		return fmt.Errorf("%s (%v)", msg, werr)
	}
	if err == nil {
		err = werr
	}
	return fmt.Errorf("the client process stopped: %v", err)
}

// smtpSource runs smtp-source for n messages. -d: every session sends its
// messages one after another, as the other clients do; -F: the same bytes
// as theirs. Its time and CPU are its whole process's: a C program's start
// is a millisecond.
func (c *clientProc) smtpSource(n int) (result, error) {
	cmd := exec.Command(c.s.smtpSource, "-d", "-s", strconv.Itoa(c.k.conns), "-m", strconv.Itoa(n),
		"-F", c.s.msgLF, "-f", from, "-t", c.s.to, "-M", "localhost", c.addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return result{Sent: n, Seconds: time.Since(t0).Seconds(), CPU: processCPU(cmd)}, nil
}

// close ends the client (its QUITs) and returns its whole process's CPU
// per message sent, in seconds, so that slices run again do not count
// twice; 0 for smtp-source, whose slices were each a process.
func (c *clientProc) close() (float64, error) {
	if c.proxy != nil {
		defer c.proxy.Close()
	}
	if c.cmd == nil {
		return 0, nil
	}
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(c.stderr.String()))
	}
	if c.sent == 0 {
		return 0, nil
	}
	return processCPU(c.cmd) / float64(c.sent), nil
}

func processCPU(cmd *exec.Cmd) float64 {
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}
