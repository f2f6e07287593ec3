// Package golden compares a test's output with a file in the test's
// testdata folder, the way the standard library's tests pin a rendering.
package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Check compares got with testdata/name. With update (each package's
// -update flag) it writes got there first. rerun is the command that
// runs the test ("go test ./probe -run Golden"): a difference or a missing
// file says to rerun it with -update, after review.
func Check(t testing.TB, name string, got []byte, update bool, rerun string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (%s -update writes it)", err, rerun)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (%s -update rewrites it after review):\n%s", path, rerun, got)
	}
}
