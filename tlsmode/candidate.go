package tlsmode

import (
	"fmt"
	"strconv"
	"strings"
)

// Candidate is one port to try and the mode to speak on it. It marshals to
// JSON as {"port":587,"mode":"starttls"}, like the rest of probe's report.
//
// A Candidate whose Mode is zero has no stated mode: submit.Dialer then
// races STARTTLS and implicit TLS on the port (ForPort's mode first) and
// keeps the one that answers, where a stated mode is never switched.
type Candidate struct {
	Port int  `json:"port"`
	Mode Mode `json:"mode,omitzero"`
}

// String returns the candidate as "587/starttls", or "2465" without a
// mode.
func (c Candidate) String() string {
	if c.Mode == 0 {
		return strconv.Itoa(c.Port)
	}
	return strconv.Itoa(c.Port) + "/" + c.Mode.String()
}

// ParseCandidate reads "587/starttls", or a bare port ("2465"), which
// leaves the mode unstated (zero).
func ParseCandidate(s string) (Candidate, error) {
	port, mode, hasMode := strings.Cut(strings.TrimSpace(s), "/")
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return Candidate{}, fmt.Errorf("tlsmode: invalid port %q in candidate %q: want 1-65535", port, s)
	}
	c := Candidate{Port: p}
	if hasMode {
		if c.Mode, err = Parse(mode); err != nil {
			return Candidate{}, err
		}
	}
	return c, nil
}

// Default returns the submission policy: 587 with STARTTLS, 465 with implicit
// TLS, then 2525 with STARTTLS. Each call returns a fresh slice the caller may
// modify.
func Default() []Candidate {
	return []Candidate{
		{Port: 587, Mode: StartTLS},
		{Port: 465, Mode: Implicit},
		{Port: 2525, Mode: StartTLS},
	}
}

// ForPort returns the mode a port conventionally speaks: Implicit for 465,
// StartTLS for every other port. It never returns Plaintext: clear text must
// be asked for explicitly.
func ForPort(port int) Mode {
	if port == 465 {
		return Implicit
	}
	return StartTLS
}
