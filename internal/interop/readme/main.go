// Command readme rewrites the interoperability table of README.md from
// the results of internal/interop's TestMatrix:
//
//	sudo bash .ci/interop.sh start && . .ci/interop.env
//	PORTWISE_INTEROP_RESULTS=/tmp/interop.json go test -count=1 ./internal/interop/
//	go run ./internal/interop/readme -results /tmp/interop.json
//
// With -check it rewrites nothing, prints the difference and exits 1 when
// README.md's table differs from the results.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/portwise/portwise/internal/interop/matrix"
)

func main() {
	results := flag.String("results", "", "the results file written by the tests (PORTWISE_INTEROP_RESULTS)")
	readme := flag.String("readme", "README.md", "the README to rewrite")
	check := flag.Bool("check", false, "only report whether the README's table matches the results")
	flag.Parse()
	if err := run(*results, *readme, *check); err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		os.Exit(1)
	}
}

func run(resultsPath, readmePath string, check bool) error {
	if resultsPath == "" {
		return fmt.Errorf("-results is required")
	}
	b, err := os.ReadFile(resultsPath)
	if err != nil {
		return err
	}
	var r matrix.Results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", resultsPath, err)
	}
	if len(r.Servers) == 0 {
		return fmt.Errorf("%s: no server ran", resultsPath)
	}
	old, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	updated, err := matrix.Rewrite(old, matrix.Table(r))
	if err != nil {
		return fmt.Errorf("%s: %w", readmePath, err)
	}
	if check {
		if !bytes.Equal(old, updated) {
			return fmt.Errorf("%s: the interop table differs from %s; run go run ./internal/interop/readme -results %s", readmePath, resultsPath, resultsPath)
		}
		return nil
	}
	return os.WriteFile(readmePath, updated, 0o644)
}
