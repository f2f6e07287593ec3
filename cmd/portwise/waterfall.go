package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portwise/portwise/internal/untrusted"
)

// The waterfall draws a timeline as a browser's network panel or httpstat
// does: one row per port, a bar on a common time axis whose cells show the
// step under way (a glyph per step, so that it reads without colour too),
// the port's time and outcome; under each row the figure of every step and,
// for a port that did not win, why it stopped (testdata/timing-*.golden.*):
//
//	send to smtp.example.com: 521ms, 465/implicit won
//	                0                  261ms              521ms
//	587/starttls   │░░▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▓▓▚▚█████        │   412ms failed
//	                ░ connect 21.2ms  ▒ banner 290ms  ▓ ehlo 24.1ms
//	                ▚ starttls 23.8ms  █ tls 52.3ms
//	                failed: tls: the certificate for mail.example.net is signed by …
//	465/implicit   │                        ░░░█████▒▒▓▓▞▞▄▀▀▀▀│   221ms won
//
// Colour (ANSI SGR) is added only when asked: on a terminal that wants it.

// drawOptions are the terminal's.
type drawOptions struct {
	width  int  // columns; the rows fit in it
	colour bool // ANSI colours
}

// stepStyle is how a step is drawn: its glyph, and its colour (SGR).
type stepStyle struct{ glyph, sgr string }

// stepOrder is the order of the steps in a legend.
var stepOrder = []string{"connect", "banner", "ehlo", "starttls", "tls", "auth", "envelope", "message"}

var stepStyles = map[string]stepStyle{
	"connect":  {"░", "36"},
	"banner":   {"▒", "34"},
	"ehlo":     {"▓", "35"},
	"starttls": {"▚", "33"},
	"tls":      {"█", "32"},
	"auth":     {"▞", "94"},
	"envelope": {"▄", "95"},
	"message":  {"▀", "96"},
}

// Glyphs that are not steps.
const (
	glyphBetween = "·" // the port was busy, between the steps drawn
	glyphOther   = "▪" // a step without a style of its own
	sgrFailed    = "31"
	sgrDim       = "2"
)

func styleOf(name string) stepStyle {
	if s, ok := stepStyles[name]; ok {
		return s
	}
	return stepStyle{glyphOther, ""}
}

// outcomeWords is an outcome as the waterfall says it: "not started".
func outcomeWords(o string) string { return strings.ReplaceAll(o, "-", " ") }

// outcomeSGR colours an outcome.
func outcomeSGR(o string) string {
	switch o {
	case outcomeWon, outcomeRecommended:
		return "1;32"
	case outcomeUsable:
		return "32"
	case outcomeFailed, outcomeUnusable:
		return "31"
	}
	return sgrDim
}

// pen paints text when colour is on.
type pen bool

func (p pen) paint(sgr, s string) string {
	if !p || sgr == "" || s == "" {
		return s
	}
	return "\x1b[" + sgr + "m" + s + "\x1b[0m"
}

// Layout widths.
const (
	durWidth = 7  // "99.9ms", "1234.5s"
	minBar   = 10 // a bar narrower than this says nothing
	minLabel = 13 // "2525/starttls"
	maxLabel = 30
	minText  = 32 // the least room for the figures under a row
)

// draw writes the waterfall of tl.
func (tl timeline) draw(w io.Writer, o drawOptions) error {
	bw := bufio.NewWriter(w)
	p := pen(o.colour)
	width := o.width
	if width <= 0 {
		width = 80
	}

	labelW, outcomeW := 0, 0
	for _, l := range tl.lanes {
		labelW = max(labelW, utf8.RuneCountInString(l.label()))
		outcomeW = max(outcomeW, len(l.outcome))
	}
	// A row is the label, two spaces, │bar│, a space, the duration, a
	// space and the outcome; a long label (an SRV target's name) is
	// clipped before the bar gets narrower than minBar.
	fixed := 2 + 2 + 1 + durWidth + 1 + outcomeW
	labelW = min(labelW, max(minLabel, min(maxLabel, width-fixed-minBar)))
	bar := max(minBar, width-labelW-fixed)
	// The figures and the reason under a row start under its bar, unless
	// that leaves them too little room.
	indent := strings.Repeat(" ", labelW+3)
	if width-len(indent) < minText {
		indent = "  "
	}
	room := width - len(indent)
	total := max(tl.total, time.Nanosecond)

	fmt.Fprintln(bw, p.paint("1", clip(tl.title(), width)))
	fmt.Fprintln(bw, indent+axis(bar, tl.total))
	used := map[string]bool{}
	for _, l := range tl.lanes {
		cells := paint(l, bar, total)
		var b strings.Builder
		label := clip(l.labelIn(labelW), labelW)
		b.WriteString(label + strings.Repeat(" ", labelW-utf8.RuneCountInString(label)) + "  │")
		for j := 0; j < len(cells); {
			k := j
			for k < len(cells) && cells[k] == cells[j] {
				k++
			}
			c := cells[j]
			glyph, sgr := " ", ""
			switch {
			case c.span != nil:
				st := styleOf(c.span.name)
				glyph, sgr = st.glyph, st.sgr
				if c.span.failed {
					sgr = sgrFailed
				}
			case c.busy:
				glyph, sgr = glyphBetween, sgrDim
				used[glyphBetween] = true
			}
			b.WriteString(p.paint(sgr, strings.Repeat(glyph, k-j)))
			j = k
		}
		dur := "-"
		if l.started {
			dur = fmtDur(l.end - l.start)
		}
		fmt.Fprintf(&b, "│ %*s %s", durWidth, dur, p.paint(outcomeSGR(l.outcome), outcomeWords(l.outcome)))
		fmt.Fprintln(bw, b.String())

		var items []string
		for _, s := range l.steps {
			st := styleOf(s.name)
			sgr := st.sgr
			if s.failed {
				sgr = sgrFailed
			}
			items = append(items, p.paint(sgr, st.glyph)+" "+clip(s.label()+" "+fmtDur(s.elapsed), room-2))
			used[s.name] = true
		}
		for _, line := range wrap(items, room) {
			fmt.Fprintln(bw, indent+line)
		}
		if l.reason != "" && l.outcome != outcomeWon {
			fmt.Fprintln(bw, indent+clip(untrusted.Reply(l.reason), room))
		}
	}

	var legend []string
	for _, name := range stepOrder {
		if used[name] {
			st := stepStyles[name]
			legend = append(legend, p.paint(st.sgr, st.glyph)+" "+name)
		}
	}
	if used[glyphBetween] {
		legend = append(legend, p.paint(sgrDim, glyphBetween)+" between steps")
	}
	for _, line := range wrap(legend, width) {
		fmt.Fprintln(bw, line)
	}
	if tl.command == "send" {
		switch {
		case tl.sent && tl.queueID != "":
			fmt.Fprintln(bw, p.paint("1", "queued as "+untrusted.Name(tl.queueID)))
		case tl.sent:
			fmt.Fprintln(bw, p.paint("1", "sent; the server gave no queue id"))
		default:
			fmt.Fprintln(bw, p.paint("1;31", "not sent"))
		}
	}
	return bw.Flush()
}

// title is the waterfall's first line.
func (tl timeline) title() string {
	verb, won := "send to ", "won"
	if tl.command == "probe" {
		verb, won = "probe of ", "recommended"
	}
	s := verb + untrusted.Name(tl.host) + ": " + fmtDur(tl.total) + ", "
	if tl.winner < 0 {
		return s + "no port " + won
	}
	return s + tl.lanes[tl.winner].label() + " " + won
}

// label names a span in the figures under a row.
func (s span) label() string {
	switch s.attempt {
	case "":
		return s.name
	case "auth":
		return "auth check" // a whole Dial: connect through AUTH
	case "tls-legacy":
		return s.attempt
	}
	return s.attempt + " " + s.name
}

// cell is one column of a bar.
type cell struct {
	span *span // the step that takes most of the cell's time
	busy bool  // the port was busy during the cell (between steps drawn)
}

// paint fills bar cells for l: each cell shows the step that takes most of
// its time; a step too short to take any cell gets the cell of its middle
// when that does not hide another step.
func paint(l lane, bar int, total time.Duration) []cell {
	cells := make([]cell, bar)
	if !l.started {
		return cells
	}
	at := func(i int) time.Duration { return time.Duration(int64(i) * int64(total) / int64(bar)) }
	overlap := func(a, b, s, e time.Duration) time.Duration { return max(0, min(b, e)-max(a, s)) }
	owned := make([]int, len(l.steps))
	for i := range cells {
		a, b := at(i), at(i+1)
		best := time.Duration(0)
		for j := range l.steps {
			s := &l.steps[j]
			if ov := overlap(a, b, s.start, s.start+s.elapsed); ov > best {
				best, cells[i].span = ov, s
			}
		}
		cells[i].busy = overlap(a, b, l.start, l.end) > 0
		if cells[i].span != nil {
			owned[cells[i].span.index(l.steps)]++
		}
	}
	for j := range l.steps {
		s := &l.steps[j]
		if owned[j] > 0 || s.elapsed <= 0 {
			continue
		}
		i := min(bar-1, max(0, int(int64(s.start+s.elapsed/2)*int64(bar)/int64(total))))
		if o := cells[i].span; o == nil || owned[o.index(l.steps)] > 1 {
			if o != nil {
				owned[o.index(l.steps)]--
			}
			cells[i].span, owned[j] = s, 1
		}
	}
	return cells
}

// index is the position of s in steps.
func (s *span) index(steps []span) int {
	for i := range steps {
		if &steps[i] == s {
			return i
		}
	}
	return -1
}

// axis labels a bar of n cells: 0 at its first cell, the middle, and the
// total at its last.
func axis(n int, total time.Duration) string {
	line := []rune(strings.Repeat(" ", n))
	put := func(s string, at int) {
		r := []rune(s)
		if at < 0 || at+len(r) > n {
			return
		}
		copy(line[at:], r)
	}
	end := fmtDur(total)
	put("0", 0)
	if mid := fmtDur(total / 2); n >= 3*len(end)+4 {
		put(mid, n/2-len(mid)/2)
	}
	put(end, n-len(end))
	return strings.TrimRight(string(line), " ")
}

// fmtDur formats d for a person, to about three significant digits; what
// rounds to nothing says so ("<0.01ms": an envelope in the message's
// flight).
func fmtDur(d time.Duration) string {
	ms := float64(max(d, 0)) / float64(time.Millisecond)
	switch {
	case d <= 0:
		return "0ms"
	case d < 5*time.Microsecond:
		return "<0.01ms"
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0fms", ms)
	case ms < 10000:
		return fmt.Sprintf("%.2fs", ms/1000)
	}
	return fmt.Sprintf("%.1fs", ms/1000)
}

// wrap joins items, two spaces apart, into lines of at most width columns
// (colour codes take none); an item longer than a line has one of its own.
func wrap(items []string, width int) []string {
	var lines []string
	var cur string
	curW := 0
	for _, it := range items {
		w := visibleWidth(it)
		if curW > 0 && curW+2+w > width {
			lines = append(lines, cur)
			cur, curW = "", 0
		}
		if curW > 0 {
			cur += "  "
			curW += 2
		}
		cur += it
		curW += w
	}
	if curW > 0 {
		lines = append(lines, cur)
	}
	return lines
}

// visibleWidth counts the runes of s outside ANSI SGR sequences.
func visibleWidth(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			if j := strings.IndexByte(s[i:], 'm'); j >= 0 {
				i += j + 1
				continue
			}
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return n
}

// clip bounds s, already safe, to n columns.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n <= 1 {
		return string(r[:max(n, 0)])
	}
	return string(r[:n-1]) + untrusted.Ellipsis
}
