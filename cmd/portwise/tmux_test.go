package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// paneWidth is the width of the terminal the view is drawn in: not 80,
// so that the view shows it asked the terminal.
const paneWidth = 100

// TestTimingInARealTerminal runs send -timing in a tmux pane of a fixed
// width, with COLUMNS unset, and reads the screen back: the view fits the
// terminal's width exactly, its bars start and end in the same columns on
// every row, the winner is marked, and it is in colour there; the same
// command piped through cat, in the same terminal, draws no colour. It
// needs tmux (apt-get install -y tmux) and skips without it, unless
// PORTWISE_TMUX_REQUIRE=1 (CI) makes that a failure.
func TestTimingInARealTerminal(t *testing.T) {
	t.Parallel()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("PORTWISE_TMUX_REQUIRE") == "1" {
			t.Fatal("tmux is not installed, and PORTWISE_TMUX_REQUIRE=1 (CI) forbids skipping")
		}
		t.Skip("tmux is not installed (apt-get install -y tmux); PORTWISE_TMUX_REQUIRE=1 makes this skip a failure")
	}
	srv, ca := server(t)
	blackhole := tlsmode.Candidate{Port: srv.Listen(tlsmode.StartTLS, submittest.Blackhole).Port, Mode: tlsmode.StartTLS}
	good := tlsmode.Candidate{Port: srv.StartTLS.Port, Mode: tlsmode.StartTLS}

	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	cmd := fmt.Sprintf("%q send -timing -ca %q -port %s -timeout 5s -user user -password-env PW -from me@example.com -to you@example.com 127.0.0.1",
		binary, ca, ports(srv, blackhole, good))
	script := strings.Join([]string{
		"PW=pass; export PW",
		cmd,
		"echo '=== piped'",
		cmd + " | cat",
		"echo $? > " + fmt.Sprintf("%q", done),
		"sleep 600",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}

	// A server of its own (-S), no configuration (-f), an environment
	// without NO_COLOR or COLUMNS: the pane is a plain terminal.
	var env []string
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "NO_COLOR", "COLUMNS", "LINES", "TMUX", "TERM":
		default:
			env = append(env, kv)
		}
	}
	env = append(env, "TERM=xterm-256color")
	sock := filepath.Join(dir, "tmux.sock")
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, tmux, append([]string{"-S", sock, "-f", os.DevNull}, args...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("new-session", "-d", "-s", "timing", "-x", fmt.Sprint(paneWidth), "-y", "80", "sh "+filepath.Join(dir, "run.sh"))
	t.Cleanup(func() { exec.Command(tmux, "-S", sock, "kill-server").Run() })

	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(done); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command did not finish; the pane shows:\n%s", run("capture-pane", "-p", "-t", "timing"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := strings.TrimSpace(run("display-message", "-p", "-t", "timing", "#{pane_width}")); w != fmt.Sprint(paneWidth) {
		t.Fatalf("the pane is %s columns wide, not %d", w, paneWidth)
	}
	// -J joins lines the terminal wrapped, so a line too long shows as
	// one; -e keeps the colours.
	screen := run("capture-pane", "-p", "-J", "-e", "-t", "timing")
	direct, piped, ok := strings.Cut(screen, "=== piped")
	if !ok {
		t.Fatalf("the pane shows:\n%s", screen)
	}
	t.Logf("the terminal run, as the pane shows it:\n%s", stripSGR(direct))

	if !strings.Contains(direct, "\x1b[") {
		t.Errorf("no colour in the terminal run:\n%q", direct)
	}
	if strings.Contains(piped, "\x1b[") {
		t.Errorf("colour in the piped run:\n%q", piped)
	}
	for name, part := range map[string]string{"terminal": stripSGR(direct), "piped": piped} {
		view, _, _ := strings.Cut(part, "\nsent ")
		view = strings.TrimLeft(view, "\n")
		if rows := checkWaterfall(t, view, paneWidth); rows != 2 {
			t.Errorf("%s run: %d rows with a bar, want 2:\n%s", name, rows, view)
		}
		if !strings.Contains(view, good.String()+" won") || !strings.Contains(view, "lost the race: "+good.String()+" won first") ||
			!strings.Contains(part, "\nsent ") {
			t.Errorf("%s run: the winner is not marked, or the loser not explained:\n%s", name, part)
		}
		widest := 0
		for _, l := range strings.Split(view, "\n") {
			widest = max(widest, utf8.RuneCountInString(strings.TrimRight(l, " ")))
		}
		want := paneWidth // in the terminal: its width, asked of it
		if name == "piped" {
			want = 80 // through a pipe, no terminal to ask
		}
		if widest != want {
			t.Errorf("%s run: the view is %d columns wide, want %d:\n%s", name, widest, want, view)
		}
	}
}
