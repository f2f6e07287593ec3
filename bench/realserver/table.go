package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// field picks one figure of each run.
func field(ms []measure, f func(measure) float64) []float64 {
	var out []float64
	for _, m := range ms {
		out = append(out, f(m))
	}
	return out
}

func label(name string) string {
	for _, c := range clients {
		if c.name == name {
			return c.label
		}
	}
	return name
}

// rateCell is the median rate with the runs' range when there are several,
// with a decimal below 100 messages/s.
func rateCell(ms []measure) string {
	r := field(ms, func(m measure) float64 { return m.rate })
	f := "%.0f"
	if median(r) < 100 {
		f = "%.1f"
	}
	if len(r) < 2 {
		return fmt.Sprintf(f, median(r))
	}
	return fmt.Sprintf(f+" ("+f+"–"+f+")", median(r), slices.Min(r), slices.Max(r))
}

// printTables prints, for each path, the rates and the client's CPU, the
// Mailer's ratios to smtp-source and Nodemailer, and what bounds each
// figure, as Markdown, medians of the runs.
func printTables(w io.Writer, results map[kase][]measure, names []string, paths []time.Duration, conns []int) {
	for _, rtt := range paths {
		fmt.Fprintf(w, "%s, messages/s (median, range of the runs) and client CPU seconds per 1,000 messages (median):\n\n", pathName(rtt))
		head := "| client |"
		rule := "| --- |"
		for _, c := range conns {
			head += fmt.Sprintf(" %d conn. msg/s | CPU s/1000 |", c)
			rule += " ---: | ---: |"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintln(w, rule)
		for _, n := range names {
			row := "| " + label(n) + " |"
			for _, c := range conns {
				ms := results[kase{n, rtt, c}]
				row += fmt.Sprintf(" %s | %.3f |", rateCell(ms), median(field(ms, func(m measure) float64 { return m.clientCPU })))
			}
			fmt.Fprintln(w, row)
		}
		fmt.Fprintln(w)
		rate := func(n string, c int) float64 {
			return median(field(results[kase{n, rtt, c}], func(m measure) float64 { return m.rate }))
		}
		for _, base := range []string{"smtp-source", "nodemailer", "go-mail", "net/smtp"} {
			if !slices.Contains(names, base) {
				continue
			}
			for _, mine := range []string{"mailer-bdat", "mailer-data"} {
				if !slices.Contains(names, mine) {
					continue
				}
				var parts []string
				for _, c := range conns {
					if b := rate(base, c); b > 0 {
						parts = append(parts, fmt.Sprintf("%.2f× at %d%s", rate(mine, c)/b, c,
							pairedRatios(results[kase{mine, rtt, c}], results[kase{base, rtt, c}])))
					}
				}
				fmt.Fprintf(w, "- %s ÷ %s (the medians' ratio; in brackets, the median and range of the ratios within each round): %s\n", label(mine), label(base), strings.Join(parts, ", "))
			}
		}
		var runs, again int
		var others []float64
		for _, n := range names {
			for _, c := range conns {
				for _, m := range results[kase{n, rtt, c}] {
					runs++
					again += m.attempts
					others = append(others, m.othersCores)
				}
			}
		}
		if len(others) > 0 {
			fmt.Fprintf(w, "- other people's work during the runs kept: median %.2f cores, at most %.2f; client processes run again for it: %d (%d runs kept)\n",
				median(others), slices.Max(others), again, runs)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%s, what bounds each figure (medians): Postfix's CPU seconds per 1,000 messages and in cores, the client's and everyone else's in cores, the client's round trips per message through the proxy:\n\n", pathName(rtt))
		fmt.Fprintln(w, "| client | conn. | Postfix s/1000 | Postfix cores | client cores | others' cores | round trips/msg |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, n := range names {
			for _, c := range conns {
				ms := results[kase{n, rtt, c}]
				flights := "—"
				if rtt > 0 {
					flights = fmt.Sprintf("%.2f", median(field(ms, func(m measure) float64 { return m.flights })))
				}
				fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.2f | %.2f | %s |\n", label(n), c,
					median(field(ms, func(m measure) float64 { return m.serverCPU })),
					median(field(ms, func(m measure) float64 { return m.serverCores })),
					median(field(ms, func(m measure) float64 { return m.clientCores })),
					median(field(ms, func(m measure) float64 { return m.othersCores })),
					flights)
			}
		}
		fmt.Fprintln(w)
	}
}

// pairedRatios are the ratios of a's runs to b's of the same round (run
// close in time, so a drift of the machine cancels), as " (median,
// min–max)", or "" with fewer than two rounds.
func pairedRatios(a, b []measure) string {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i].rate > 0 {
			r = append(r, a[i].rate/b[i].rate)
		}
	}
	if len(r) < 2 {
		return ""
	}
	return fmt.Sprintf(" [%.2f, %.2f–%.2f]", median(r), slices.Min(r), slices.Max(r))
}
