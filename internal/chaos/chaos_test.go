package chaos

import (
	"flag"
	"strings"
	"testing"
	"time"
)

var (
	seedFlag     = flag.Int64("chaos.seed", -1, "run only this seed (with -chaos.runs, this seed and the next ones)")
	messagesFlag = flag.Int("chaos.messages", 0, "messages per run (default 250)")
	runsFlag     = flag.Int("chaos.runs", 1, "with -chaos.seed, how many consecutive seeds to run")
)

// ciSeeds are the runs CI makes: eight consecutive seeds cover every
// scenario (STARTTLS or implicit TLS, credential revoked or not, Close
// during sends or not), 2,000 messages in all.
var ciSeeds = []uint64{0, 1, 2, 3, 4, 5, 6, 7}

// TestChaos runs the fault-injection test and fails on any broken
// invariant, printing the seed to replay it with:
//
//	go test ./internal/chaos -run TestChaos -chaos.seed=N -chaos.messages=M -v
func TestChaos(t *testing.T) {
	seeds, messages := ciSeeds, 250
	if *seedFlag >= 0 {
		seeds = nil
		for i := range max(*runsFlag, 1) {
			seeds = append(seeds, uint64(*seedFlag)+uint64(i))
		}
	}
	if *messagesFlag > 0 {
		messages = *messagesFlag
	}
	total := &Report{Outcomes: map[string]int{}, Faults: map[string]int{}}
	start := time.Now()
	for _, seed := range seeds {
		rep, err := Run(Config{Seed: seed, Messages: messages})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		t.Log(rep.Summary())
		total.add(rep)
		for _, v := range rep.Violations {
			t.Errorf("seed %d: %s, message %d: %s", seed, v.Class, v.Message, strings.TrimRight(v.Detail, "\n"))
		}
		if len(rep.Violations) > 0 {
			t.Logf("replay: go test ./internal/chaos -run TestChaos -chaos.seed=%d -chaos.messages=%d -v", seed, messages)
		}
	}
	if len(seeds) > 1 {
		total.Took = time.Since(start)
		t.Logf("all %d seeds (%d..%d): %s", len(seeds), seeds[0], seeds[len(seeds)-1], total.Summary())
	}
}
