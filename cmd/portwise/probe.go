package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/portwise/portwise/internal/plan"
	"github.com/portwise/portwise/internal/untrusted"
	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit/discover"
	"github.com/portwise/portwise/tlsmode"
)

// progressAfter is how long a probe runs before it starts reporting
// progress on stderr: a quick probe prints nothing but its result.
const progressAfter = time.Second

func (c *cli) probe(args []string) int {
	fs := flag.NewFlagSet("portwise probe", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	var (
		o       common
		asJSON  = fs.Bool("json", false, "print the report as JSON")
		timeout = fs.Duration("timeout", probe.DefaultTimeout, "budget of each connection to a port")
		srv     = fs.Bool("srv", false, "also probe the host's RFC 6186 SRV targets (only those under the host's own domain)")
		timing  = fs.Bool("timing", false, "also draw the ports' steps as a waterfall on one time axis (with -json: a \"timing\" object)")
	)
	o.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(c.stderr, "usage: portwise probe [flags] HOST\n\nChecks the mail submission ports of HOST and says which one to configure.\nExit status: 0 a usable secure port exists, 1 none does, 2 usage error.\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if helpRequested(err) {
		return exitOK
	}
	if err != nil {
		return exitUsage // flag has printed the problem and the usage
	}
	if len(pos) != 1 {
		fs.Usage()
		return c.exit(usagef("probe takes one HOST, got %d arguments", len(pos)))
	}
	if *timeout <= 0 {
		return c.exit(usagef("-timeout must be positive"))
	}
	if err := o.resolve(c.getenv); err != nil {
		return c.exit(err)
	}
	if _, _, err := plan.SplitHost(pos[0]); err != nil {
		return c.exit(usagef("%v", err))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := probe.Options{Candidates: o.selected, TLSConfig: o.tls, Timeout: *timeout, Auth: o.auth, NetDialer: o.netDialer()}
	if *srv {
		opts.Discover = (&discover.SRV{Resolver: o.resolver}).Lookup
	}
	prog := newProgress(c, opts, pos[0], *timeout)
	opts.OnPort = prog.done
	go prog.run(ctx)
	rep, err := probe.Run(ctx, pos[0], opts)
	prog.stop()
	if err != nil {
		return c.exit(err)
	}

	switch {
	case *asJSON && *timing:
		err = writeJSON(c.stdout, struct {
			*probe.Report
			Timing timingJSON `json:"timing"`
		}{rep, probeTimeline(rep).json()})
	case *asJSON:
		err = writeJSON(c.stdout, rep)
	default:
		err = rep.WriteTextOptions(c.stdout, probe.TextOptions{Color: c.colour})
		if err == nil && *timing {
			fmt.Fprintln(c.stdout)
			err = probeTimeline(rep).draw(c.stdout, drawOptions{width: c.width, colour: c.colour})
		}
	}
	if err != nil {
		return c.exit(err)
	}
	if !rep.Ready() {
		return exitFail
	}
	return exitOK
}

// progress tells a person on stderr which ports a slow probe still waits
// for: nothing during the first second, then a line per port as it
// finishes and a reminder of the pending ones every few seconds.
type progress struct {
	c       *cli
	timeout time.Duration
	start   time.Time

	mu      sync.Mutex
	pending []tlsmode.Candidate
	early   []probe.PortReport // finished before the first line
	talking bool
	quit    chan struct{}
	wg      sync.WaitGroup
}

func newProgress(c *cli, o probe.Options, host string, timeout time.Duration) *progress {
	cands := o.Candidates
	if cands == nil {
		cands = probe.DefaultCandidates()
	}
	if _, port, _ := plan.SplitHost(host); port != 0 {
		cands = []tlsmode.Candidate{{Port: port, Mode: tlsmode.ForPort(port)}}
		for _, cand := range o.Candidates {
			if cand.Port == port {
				cands[0] = cand
			}
		}
	}
	p := &progress{c: c, timeout: timeout, start: time.Now(), pending: slices.Clone(cands), quit: make(chan struct{})}
	p.wg.Add(1)
	return p
}

func (p *progress) done(r probe.PortReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = slices.DeleteFunc(p.pending, func(c tlsmode.Candidate) bool { return c.Port == r.Port })
	if !p.talking {
		p.early = append(p.early, r)
		return
	}
	p.line(r)
}

// line prints one finished port; p.mu is held.
func (p *progress) line(r probe.PortReport) {
	what := r.Reachability
	if r.Usable {
		what += ", " + r.TLSVersion + ", usable"
	} else if r.Reachability == probe.ReachOpen {
		what += ", not usable"
	}
	fmt.Fprintf(p.c.stderr, "portwise: %d/%s: %s (%s)\n", r.Port, r.Mode, what, r.Elapsed.Round(time.Millisecond))
}

func (p *progress) waiting() {
	var names []string
	for _, c := range p.pending {
		names = append(names, c.String())
	}
	if len(names) > 0 {
		fmt.Fprintf(p.c.stderr, "portwise: waiting for %s (%s so far; a blocked port takes up to %s)\n", strings.Join(names, ", "), time.Since(p.start).Round(time.Second), p.timeout)
	}
}

func (p *progress) run(ctx context.Context) {
	defer p.wg.Done()
	first := time.NewTimer(progressAfter)
	defer first.Stop()
	select {
	case <-p.quit:
		return
	case <-ctx.Done():
		return
	case <-first.C:
	}
	p.mu.Lock()
	p.talking = true
	for _, r := range p.early {
		p.line(r)
	}
	p.waiting()
	p.mu.Unlock()
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			p.mu.Lock()
			p.waiting()
			p.mu.Unlock()
		}
	}
}

func (p *progress) stop() {
	close(p.quit)
	p.wg.Wait()
}

// writeJSON prints v as indented JSON, its strings safe for a terminal.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(escapeJSON(b), '\n'))
	return err
}

// escapeJSON writes the C1 and bidi controls that encoding/json leaves raw
// in strings (it escapes only C0, U+2028 and U+2029) as \uXXXX escapes,
// so that a report quoting a hostile certificate or reply does not drive
// the terminal it is printed on. The JSON means the same: outside strings
// a JSON document is ASCII.
func escapeJSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r >= 0x80 && untrusted.Escaped(r) {
			if out == nil {
				out = append(make([]byte, 0, len(b)+64), b[:i]...)
			}
			out = fmt.Appendf(out, `\u%04x`, r)
		} else if out != nil {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}
