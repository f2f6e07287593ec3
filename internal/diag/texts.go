package diag

import (
	"slices"

	"github.com/portwise/portwise/internal/wire"
	"github.com/portwise/portwise/tlsmode"
)

// AdviceTexts returns every advice text the package can give for a,
// without repeats: the providers' fixes, the reasons' advice and each
// kind's. It is for the tests that check that the names the texts give
// (Go identifiers for Go, flags for CLI) exist, so that a rename breaks a
// test rather than a user's fix.
func AdviceTexts(a Audience) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, ru := range rules {
		add(ru.advice.advice(a))
	}
	for _, r := range Reasons() {
		add(reasonAdvice(r, a))
	}
	for _, c := range []tlsmode.Candidate{{Port: 587, Mode: tlsmode.StartTLS}, {Port: 465, Mode: tlsmode.Implicit}} {
		for _, k := range Kinds() {
			d := Diagnosis{Kind: k, Candidate: c, Speaks: Other(c.Mode)}
			add(d.Advice(a))
			for _, command := range []string{"", "MAIL FROM", "RCPT TO", "DATA", "message", "AUTH PLAIN", "AUTH XOAUTH2"} {
				d.Command = command
				add(d.Advice(a))
				for _, code := range []int{421, 450, 504, 530, 534, 535, 538, 550} {
					d.Reply = &wire.Reply{Code: code}
					add(d.Advice(a))
				}
				d.Reply = nil
			}
		}
	}
	return out
}
