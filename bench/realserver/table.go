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

// rateCell is the median rate with the runs' range when there are several.
func rateCell(ms []measure) string {
	r := field(ms, func(m measure) float64 { return m.rate })
	if len(r) < 2 {
		return fmt.Sprintf("%.0f", median(r))
	}
	return fmt.Sprintf("%.0f (%.0f–%.0f)", median(r), slices.Min(r), slices.Max(r))
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
						parts = append(parts, fmt.Sprintf("%.2f× at %d", rate(mine, c)/b, c))
					}
				}
				fmt.Fprintf(w, "- %s ÷ %s: %s\n", label(mine), label(base), strings.Join(parts, ", "))
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%s, what bounds each figure (medians): Postfix's CPU per 1,000 messages and in cores, the client's and everyone else's in cores:\n\n", pathName(rtt))
		fmt.Fprintln(w, "| client | conn. | Postfix s/1000 | Postfix cores | client cores | others' cores |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
		for _, n := range names {
			for _, c := range conns {
				ms := results[kase{n, rtt, c}]
				fmt.Fprintf(w, "| %s | %d | %.3f | %.2f | %.2f | %.2f |\n", label(n), c,
					median(field(ms, func(m measure) float64 { return m.serverCPU })),
					median(field(ms, func(m measure) float64 { return m.serverCores })),
					median(field(ms, func(m measure) float64 { return m.clientCores })),
					median(field(ms, func(m measure) float64 { return m.othersCores })))
			}
		}
		fmt.Fprintln(w)
	}
}
