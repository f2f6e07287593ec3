package submit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/portwise/portwise/submit"
)

// TestIsTemporaryOfBareErrors: IsTemporary classifies errors that did not
// come from portwise too, as the README's table says.
func TestIsTemporaryOfBareErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, refused := net.Dial("tcp", addr)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"wrapped refusal", fmt.Errorf("sending: %w", refused), true},
		{"connection closed", io.EOF, true},
		{"the outcome is unknown", submit.ErrOutcomeUnknown, false},
		{"a bad address", submit.ErrBadAddress, false},
		{"cancelled", context.Canceled, false},
		{"nil", nil, false},
		{"something else", errors.New("disk full"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := submit.IsTemporary(tt.err); got != tt.want {
				t.Errorf("IsTemporary(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
