package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portwise/portwise/internal/netem"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// from is the sender of every message.
const from = "bench@example.test"

// clients, in the order of the table.
var clients = []struct{ name, label string }{
	{"mailer-bdat", "portwise Mailer, BDAT"},
	{"mailer-data", "portwise Mailer, DATA (`NoChunking`)"},
	{"nodemailer", "Nodemailer pool"},
	{"go-mail", "go-mail v0.8.1"},
	{"net/smtp", "net/smtp"},
	{"smtp-source", "`smtp-source` (the server's ceiling)"},
}

func main() {
	var (
		client = flag.String("client", "", "internal: be the named Go client process")
		j      job
	)
	flag.StringVar(&j.Addr, "addr", "", "internal: the server for -client")
	flag.StringVar(&j.To, "to", "", "internal: the recipient for -client")
	flag.StringVar(&j.Msg, "msg", "", "internal: the message file for -client")
	flag.IntVar(&j.Conns, "c", 1, "internal: connections for -client")
	flag.StringVar(&j.Profile, "cpuprofile", "", "internal: CPU profile file for -client")

	var o options
	flag.IntVar(&o.reps, "reps", 3, "runs of every client in every case, interleaved; the tables show medians")
	flag.IntVar(&o.n, "n", 2000, "messages per run on loopback")
	flag.IntVar(&o.slices, "slices", 4, "on loopback, make each run of that many slices, interleaved with the other clients' (the machine's speed drifts within a minute)")
	flag.IntVar(&o.nRTT, "n-rtt", 300, "messages per run at the round trip")
	flag.StringVar(&o.conns, "conns", "1,4", "connections at once, the cases to run")
	flag.DurationVar(&o.rtt, "rtt", 20*time.Millisecond, "round trip of the latency cases (internal/netem's proxy); 0 runs loopback only")
	flag.BoolVar(&o.noLoopback, "no-loopback", false, "run only the latency cases")
	flag.StringVar(&o.only, "clients", "", "comma-separated clients to run (default: all): "+clientNames())
	flag.Float64Var(&o.maxOthers, "max-others", 0.25, "run a case again (up to -attempts times, keeping the quietest) when the rest of the machine used more than this many cores meanwhile; 0 never does")
	flag.IntVar(&o.attempts, "attempts", 4, "most runs of one case under -max-others")
	flag.BoolVar(&o.smoke, "smoke", false, "CI: one run of 200 messages (40 at the round trip) per case, to keep the harness from rotting")
	flag.StringVar(&o.profiles, "profiles", "", "directory for CPU profiles of the Go clients' runs (pprof)")
	flag.StringVar(&o.nodeDir, "node", "node", "directory of nodemailer.mjs and its package-lock.json")
	flag.BoolVar(&o.verbose, "v", false, "print each run's Postfix CPU by program")
	flag.Parse()

	if *client != "" {
		j.From = from
		if err := runClient(*client, j); err != nil {
			fmt.Fprintln(os.Stderr, "realserver:", *client+":", err)
			os.Exit(1)
		}
		return
	}
	if err := drive(o); err != nil {
		fmt.Fprintln(os.Stderr, "realserver:", err)
		os.Exit(1)
	}
}

func clientNames() string {
	var s []string
	for _, c := range clients {
		s = append(s, c.name)
	}
	return strings.Join(s, ",")
}

// options are the driver's flags.
type options struct {
	reps, n, nRTT int
	slices        int
	conns         string
	rtt           time.Duration
	noLoopback    bool
	only          string
	maxOthers     float64
	attempts      int
	smoke         bool
	profiles      string
	nodeDir       string
	verbose       bool
}

// setup is what every run needs.
type setup struct {
	o          options
	plain, to  string // the server's plain port, the discarded recipient
	self       string // this program, to run the Go clients
	smtpSource string
	node       string
	msg, msgLF string // the message, with CRLF and with LF (for smtp-source)
	probes     []float64
}

// kase is one cell of a table: a client, a path, a number of connections.
type kase struct {
	client string
	rtt    time.Duration // 0: loopback
	conns  int
}

// sample is what one client process did and cost: a slice of a run, or
// a run's slices summed.
type sample struct {
	n        int
	seconds  float64 // the client's own window: first connection to last message accepted
	cpu      float64 // the client's CPU in that window
	process  float64 // the client's CPU, its whole process, start and the waits between slices included
	wall     float64 // the slice's wall time, seen by the driver
	server   serverUse
	machine  float64 // every CPU's busy time during wall
	self     float64 // the driver's own CPU meanwhile (the proxy)
	flights  int64   // through the proxy: the client's flights, sessions' setup and QUIT included
	attempts int     // runs made again because the machine was busy (-max-others)
}

func (a *sample) add(b sample) {
	a.n += b.n
	a.seconds += b.seconds
	a.cpu += b.cpu
	a.process += b.process
	a.wall += b.wall
	a.machine += b.machine
	a.self += b.self
	a.flights += b.flights
	a.attempts += b.attempts
	a.server.total += b.server.total
	if a.server.byComm == nil {
		a.server.byComm = make(map[string]float64)
	}
	for k, v := range b.server.byComm {
		a.server.byComm[k] += v
	}
}

// measure is one run's figures.
type measure struct {
	rate         float64 // messages per second
	clientCPU    float64 // client CPU seconds per 1,000 messages (its window)
	processCPU   float64 // the same over the client's whole process
	serverCPU    float64 // Postfix CPU seconds per 1,000 messages
	serverCores  float64 // Postfix CPU / wall time
	clientCores  float64
	othersCores  float64 // the rest of the machine: other people's work
	serverDetail serverUse
	attempts     int     // runs made again for a busy machine
	flights      float64 // round trips per message through the proxy
}

func (t sample) measure() measure {
	per1000 := 1000 / float64(t.n)
	return measure{
		rate:         float64(t.n) / t.seconds,
		clientCPU:    t.cpu * per1000,
		processCPU:   t.process * per1000,
		serverCPU:    t.server.total * per1000,
		serverCores:  t.server.total / t.wall,
		clientCores:  t.cpu / t.wall,
		othersCores:  max(0, t.machine-t.server.total-t.cpu-t.self) / t.wall,
		serverDetail: t.server,
		attempts:     t.attempts,
		flights:      float64(t.flights) / float64(t.n),
	}
}

func drive(o options) error {
	if o.smoke {
		o.reps, o.n, o.nRTT, o.slices, o.maxOthers = 1, 200, 40, 1, 0
	}
	s := setup{o: o, plain: os.Getenv("PORTWISE_REALMTA_PLAIN"), to: os.Getenv("PORTWISE_REALMTA_DISCARD")}
	if s.plain == "" || s.to == "" {
		return errors.New("PORTWISE_REALMTA_PLAIN and PORTWISE_REALMTA_DISCARD are not set: " +
			"run .ci/realmta.sh (it adds Postfix's plain port and the discarded recipient) and source .ci/realmta.env or .ci/interop.env")
	}
	var err error
	if s.self, err = os.Executable(); err != nil {
		return err
	}
	names := clientNames()
	if o.only != "" {
		names = o.only
	}
	var chosen []string
	for _, n := range strings.Split(names, ",") {
		if !slices.ContainsFunc(clients, func(c struct{ name, label string }) bool { return c.name == n }) {
			return fmt.Errorf("unknown client %q (have %s)", n, clientNames())
		}
		chosen = append(chosen, n)
	}
	if slices.Contains(chosen, "smtp-source") {
		if s.smtpSource, err = exec.LookPath("smtp-source"); err != nil {
			return fmt.Errorf("smtp-source is not on PATH (Debian's postfix package puts it in /usr/sbin): %w", err)
		}
	}
	if slices.Contains(chosen, "nodemailer") {
		if s.node, err = nodeSetup(o.nodeDir); err != nil {
			return err
		}
	}
	var conns []int
	for _, c := range strings.Split(o.conns, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			return fmt.Errorf("bad -conns %q", o.conns)
		}
		conns = append(conns, n)
	}
	if o.profiles != "" {
		if err := os.MkdirAll(o.profiles, 0o755); err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "realserver")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	raw := message(from, s.to)
	s.msg, s.msgLF = filepath.Join(dir, "msg.eml"), filepath.Join(dir, "msg.txt")
	if err := os.WriteFile(s.msg, raw, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(s.msgLF, lfText(raw), 0o644); err != nil {
		return err
	}
	if err := checkDiscarded(s); err != nil {
		return err
	}

	var paths []time.Duration
	if !o.noLoopback {
		paths = append(paths, 0)
	}
	if o.rtt > 0 {
		paths = append(paths, o.rtt)
		if rtt, err := proxyRTT(o.rtt); err == nil {
			fmt.Printf("round trip through internal/netem's proxy (median of 21 one-byte echoes): %.2f ms\n", rtt.Seconds()*1e3)
		}
	}
	fmt.Printf("%d CPUs (%s), %s; %d messages per run on loopback (slices of a run: %d), %d at the round trip; %d runs of each, interleaved\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), o.n, max(1, o.slices), o.nRTT, o.reps)

	// Every rep runs every case once, the clients in a rotated order, so
	// that a slow minute of the shared machine falls on all of them; on
	// loopback, where the CPU bounds the rate, each run is made of slices
	// interleaved with the other clients' slices, as the machine's speed
	// drifts within seconds.
	results := make(map[kase][]measure)
	for rep := range o.reps {
		for _, rtt := range paths {
			n, nslices := o.n, max(1, o.slices)
			if rtt > 0 {
				n, nslices = o.nRTT, 1
			}
			for _, c := range conns {
				// One process per client for the whole run: its slices
				// are sent over the same connections, its JIT (Node's)
				// stays warm. smtp-source starts afresh for each slice.
				procs := make(map[string]*clientProc)
				runs := make(map[string]*sample)
				for _, name := range chosen {
					p, err := s.start(kase{name, rtt, c}, fmt.Sprintf("run%d", rep+1))
					if err != nil {
						return fmt.Errorf("%s, %s, %d connections: %w", name, pathName(rtt), c, err)
					}
					procs[name], runs[name] = p, new(sample)
				}
				for sl := range nslices {
					part := n / nslices
					if sl == nslices-1 {
						part = n - part*(nslices-1)
					}
					for i := range chosen {
						name := chosen[(i+rep*nslices+sl)%len(chosen)]
						t, err := s.quietest(procs[name], part)
						if err != nil {
							return fmt.Errorf("%s, %s, %d connections: %w", name, pathName(rtt), c, err)
						}
						runs[name].add(t)
					}
				}
				for _, name := range chosen {
					process, err := procs[name].close()
					if err != nil {
						return fmt.Errorf("%s, %s, %d connections: %w", name, pathName(rtt), c, err)
					}
					if name != "smtp-source" { // its slices' processes are summed already
						runs[name].process = process * float64(runs[name].n)
					}
				}
				for _, name := range chosen {
					m := runs[name].measure()
					results[kase{name, rtt, c}] = append(results[kase{name, rtt, c}], m)
					fmt.Printf("run %d %-11s %-8s conns=%d %7.1f msg/s  client %.3f s/1000 (process %.3f)  postfix %.3f s/1000 (%.2f cores)  client %.2f cores  others %.2f cores  again %d",
						rep+1, name, pathName(rtt), c, m.rate, m.clientCPU, m.processCPU, m.serverCPU, m.serverCores, m.clientCores, m.othersCores, m.attempts)
					if m.flights > 0 {
						fmt.Printf("  %.2f round trips/msg", m.flights)
					}
					fmt.Println()
					if o.verbose {
						fmt.Printf("      postfix CPU s: %s\n", m.serverDetail)
					}
				}
			}
		}
	}
	fmt.Println()
	if len(s.probes) > 0 {
		fmt.Printf("the machine's speed: a fixed piece of work (SHA-256 of 32 MiB) timed before each of %d slices took %.1f ms (median), %.1f–%.1f\n\n",
			len(s.probes), median(s.probes), slices.Min(s.probes), slices.Max(s.probes))
	}
	fmt.Println()
	printTables(os.Stdout, results, chosen, paths, conns)
	return nil
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.*)$`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "unknown CPU"
}

func pathName(rtt time.Duration) string {
	if rtt == 0 {
		return "loopback"
	}
	return rtt.String()
}

// quietest has a client send a slice of n messages, again while the rest
// of the machine used more than -max-others cores meanwhile, at most
// -attempts times, and keeps the slice it disturbed least. Each waits
// first for Postfix to be done with the last slice's messages and for the
// machine to calm down.
func (s *setup) quietest(c *clientProc, n int) (sample, error) {
	var best sample
	for attempt := 1; ; attempt++ {
		waitQuiet(s.o.maxOthers, time.Minute)
		s.probes = append(s.probes, probe())
		t, err := c.slice(n)
		if err != nil {
			return sample{}, err
		}
		if attempt == 1 || t.measure().othersCores < best.measure().othersCores {
			best = t
		}
		best.attempts = attempt - 1
		if s.o.maxOthers <= 0 || t.measure().othersCores <= s.o.maxOthers || attempt >= s.o.attempts {
			return best, nil
		}
	}
}

// probe times a fixed piece of work, in milliseconds: the machine's own
// speed, which a virtual machine's host varies.
func probe() float64 {
	buf := make([]byte, 8<<20)
	t0 := time.Now()
	for range 4 {
		sha256.Sum256(buf)
	}
	return time.Since(t0).Seconds() * 1e3
}

// nodeSetup finds node and installs Nodemailer from the lock file when it
// is missing.
func nodeSetup(dir string) (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node is not on PATH: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "nodemailer", "package.json")); err == nil {
		return node, nil
	}
	npm := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	npm.Dir, npm.Stdout, npm.Stderr = dir, os.Stderr, os.Stderr
	if err := npm.Run(); err != nil {
		return "", fmt.Errorf("npm ci in %s: %w", dir, err)
	}
	return node, nil
}

// checkDiscarded sends one message and finds in Postfix's log that the
// discard agent took it, so that a misconfigured server does not fill a
// maildir with thousands of messages.
func checkDiscarded(s setup) error {
	host, port, err := splitAddr(s.plain)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(s.msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := &submit.Dialer{Candidates: []tlsmode.Candidate{{Port: port, Mode: tlsmode.Plaintext}}, LocalName: "localhost"}
	c, err := d.Dial(ctx, host)
	if err != nil {
		return fmt.Errorf("the plain port of Postfix, %s: %w (does this branch's .ci/realmta.sh configure it?)", s.plain, err)
	}
	defer c.Close()
	res, err := c.SendWith(ctx, from, []string{s.to}, bytes.NewReader(raw), nil)
	if err != nil {
		return err
	}
	logFile := os.Getenv("PORTWISE_REALMTA_LOG")
	if logFile == "" || res.QueueID == "" {
		fmt.Printf("not checking that %s is discarded (PORTWISE_REALMTA_LOG %q, queue id %q)\n", s.to, logFile, res.QueueID)
		return nil
	}
	want := " " + res.QueueID + ": to=<" + s.to + ">"
	for range 50 {
		line, err := lastLogLine(logFile, want)
		if err != nil {
			return err
		}
		switch {
		case strings.Contains(line, "/discard["):
			return nil
		case line != "":
			return fmt.Errorf("%s is not discarded by Postfix (%s): run this branch's .ci/realmta.sh", s.to, line)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no delivery of %s (queue id %s) in %s within 10 s", s.to, res.QueueID, logFile)
}

// lastLogLine is the last line of the log's last MiB that contains substr.
func lastLogLine(file, substr string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 1<<20 {
		if _, err := f.Seek(fi.Size()-1<<20, io.SeekStart); err != nil {
			return "", err
		}
	}
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			last = sc.Text()
		}
	}
	return last, sc.Err()
}

// proxyRTT is the median round trip of one byte through a netem proxy of
// the given round trip: its own scheduling adds to every client's alike.
func proxyRTT(rtt time.Duration) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	p, err := netem.NewProxy(ln.Addr().String(), rtt/2)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	var rtts []time.Duration
	b := []byte{0}
	for range 21 {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, err
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}
