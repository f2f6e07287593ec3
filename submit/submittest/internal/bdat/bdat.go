// Package bdat reads RFC 3030 BDAT command lines for the test servers of
// submittest: the tap that watches a connection in clear and the scripted
// server both need to know how many bytes of chunk follow a command.
package bdat

import (
	"strconv"
	"strings"
)

// Parse reads a "BDAT n" or "BDAT n LAST" command line (without CRLF).
// ok is false for any other line, including a BDAT whose size is not a
// decimal number or whose third word is not LAST.
func Parse(line string) (size int64, last, ok bool) {
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 3 || !strings.EqualFold(f[0], "BDAT") {
		return 0, false, false
	}
	if len(f) == 3 && !strings.EqualFold(f[2], "LAST") {
		return 0, false, false
	}
	n, err := strconv.ParseUint(f[1], 10, 63)
	if err != nil {
		return 0, false, false
	}
	return int64(n), len(f) == 3, true
}
