package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/portwise/portwise/internal/diag"
)

// flagName is a flag as advice names it: "-port 465/implicit", "(-xoauth2-token-env)".
var flagName = regexp.MustCompile(`(?:^|[\s(])-([a-z][a-z0-9-]*[a-z0-9])`)

// TestCLIAdviceNamesRealFlags checks every flag that the advice given at
// the command line names (internal/diag's texts for the CLI audience)
// against the flags this command's subcommands register, so that renaming
// a flag breaks this test rather than the advice.
func TestCLIAdviceNamesRealFlags(t *testing.T) {
	flags := map[string]bool{}
	for _, sub := range []string{"probe", "send"} {
		var out bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
		if code := c.run([]string{sub, "-h"}); code != exitOK {
			t.Fatalf("portwise %s -h exited %d:\n%s", sub, code, out.String())
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if name, ok := strings.CutPrefix(strings.TrimSpace(line), "-"); ok {
				name, _, _ = strings.Cut(name, " ")
				flags[name] = true
			}
		}
	}
	if !flags["port"] || !flags["xoauth2-token-env"] {
		t.Fatalf("the flags were not read from the usage: %v", flags)
	}
	named := 0
	for _, text := range diag.AdviceTexts(diag.CLI) {
		for _, m := range flagName.FindAllStringSubmatch(text, -1) {
			named++
			if !flags[m[1]] {
				t.Errorf("advice names -%s, which the command does not have: %q", m[1], text)
			}
		}
	}
	if named < 20 {
		t.Errorf("only %d flags named in the advice: the pattern misses them", named)
	}
}
