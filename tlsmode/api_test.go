package tlsmode_test

import (
	"encoding"

	"github.com/portwise/portwise/tlsmode"
)

// The public contract of the package, checked by the compiler: a
// renamed or re-typed name breaks this file before it breaks a user.
var (
	_ = underlyingUint8[tlsmode.Mode]

	_ func(tlsmode.Mode) string               = tlsmode.Mode.String
	_ func(tlsmode.Mode) ([]byte, error)      = tlsmode.Mode.MarshalText
	_ func(*tlsmode.Mode, []byte) error       = (*tlsmode.Mode).UnmarshalText
	_ func(string) (tlsmode.Mode, error)      = tlsmode.Parse
	_ encoding.TextMarshaler                  = tlsmode.Mode(0)
	_ encoding.TextUnmarshaler                = (*tlsmode.Mode)(nil)
	_ tlsmode.Candidate                       = tlsmode.Candidate{Port: 587, Mode: tlsmode.StartTLS}
	_ func(tlsmode.Candidate) string          = tlsmode.Candidate.String
	_ func() []tlsmode.Candidate              = tlsmode.Default
	_ func(int) tlsmode.Mode                  = tlsmode.ForPort
	_ func(string) (tlsmode.Candidate, error) = tlsmode.ParseCandidate
)

// The documented values (iota + 1, so the zero Mode means "not set"); a
// mismatch makes the array types differ.
var (
	_ [1]struct{} = [tlsmode.StartTLS]struct{}{}
	_ [2]struct{} = [tlsmode.Implicit]struct{}{}
	_ [3]struct{} = [tlsmode.Plaintext]struct{}{}
)

func underlyingUint8[T ~uint8]() {}
