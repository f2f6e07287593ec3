package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestTurnsNeverOverlap: twelve goroutines of three processes taking turns
// of one account as fast as they can get 60 turns, by the database's clock
// each at least one spacing after the one before. The sends of fleet_test
// and the server's timestamps of the mailworker tests add the scheduler's
// lateness; this is the schedule itself.
func TestTurnsNeverOverlap(t *testing.T) {
	dsn := os.Getenv("PORTWISE_RIVER_PG")
	if dsn == "" {
		t.Skip("PORTWISE_RIVER_PG is unset: set it to a PostgreSQL DSN (bash .ci/postgres.sh start prints one) to test the shared limits")
	}
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "portwise_test_" + hex.EncodeToString(b[:])
	admin, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")

	const rate, n = 50, 60
	every := time.Second / rate
	var (
		mu    sync.Mutex
		slots []time.Time
		wg    sync.WaitGroup
	)
	for p := range 3 {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		l, err := New(ctx, Config{Pool: pool, Schema: schema, Account: "smtp.example.com/me", Holder: string(rune('A' + p)), Rate: rate})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for range 4 {
			wg.Go(func() {
				for {
					slot, err := l.takeTurn(ctx, time.Now().Add(10*time.Second))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					done := len(slots) >= n
					if !done {
						slots = append(slots, slot)
					}
					mu.Unlock()
					if done {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(slots); i++ {
		if d := slots[i].Sub(slots[i-1]); d < every {
			t.Errorf("turns %d and %d %s apart, want at least %s", i-1, i, d, every)
		}
	}
	t.Logf("%d turns of 3 processes over %s, every one %s or more after the one before", n, slots[n-1].Sub(slots[0]), every)
}
