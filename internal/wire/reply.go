// Package wire is portwise's own SMTP client wire layer: bounded reply
// parsing, command writing with redacted transcripts, the STARTTLS guard and
// the AUTH exchange. submit and probe share it so that there is one SMTP
// client in the module, and every byte a server can make us read is bounded.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
)

// Bounds on what a server can make the client read for one reply. RFC 5321
// §4.5.3.1.5 caps a reply line at 512 octets; real servers stay well inside
// it, and the slack below only tolerates sloppy ones.
const (
	MaxLineBytes  = 1000     // one reply line, without CRLF
	MaxReplyLines = 100      // lines of one multi-line reply
	MaxReplyBytes = 64 << 10 // all lines of one reply together
)

// ErrProtocol marks a reply that does not follow RFC 5321's grammar or that
// exceeds the bounds above.
var ErrProtocol = errors.New("SMTP protocol violation")

// Reply is one complete server reply.
type Reply struct {
	Code  int
	Lines []string // text after "NNN-" / "NNN ", one entry per line
}

// Text returns the reply's lines joined by newlines.
func (r *Reply) Text() string { return strings.Join(r.Lines, "\n") }

// String renders the reply on one line, as a person would quote it.
func (r *Reply) String() string {
	return strconv.Itoa(r.Code) + " " + strings.Join(r.Lines, " / ")
}

// Err converts a reply into go-smtp's *SMTPError, parsing an RFC 3463
// enhanced status code when the text starts with one.
func (r *Reply) Err() *smtp.SMTPError {
	e := &smtp.SMTPError{Code: r.Code, Message: r.Text()}
	first, rest, ok := strings.Cut(e.Message, " ")
	if !ok {
		return e
	}
	if ec, ok := parseEnhanced(first); ok && ec[0] == r.Code/100 {
		e.EnhancedCode = ec
		e.Message = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	}
	return e
}

func parseEnhanced(s string) (smtp.EnhancedCode, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return smtp.EnhancedCode{}, false
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 || p == "" {
			return smtp.EnhancedCode{}, false
		}
		ec[i] = n
	}
	return ec, true
}

// readLine reads one CRLF (or bare LF) terminated line of at most
// MaxLineBytes, without allocating more than that for a hostile line.
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineBytes+2 {
			return "", errLineTooLong
		}
		if err == nil {
			if buf != nil {
				chunk = append(buf, chunk...)
			}
			// One allocation in the common case: the string itself.
			line := strings.TrimSuffix(strings.TrimSuffix(string(chunk), "\n"), "\r")
			if len(line) > MaxLineBytes {
				return "", errLineTooLong
			}
			return line, nil
		}
		buf = append(buf, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

var errLineTooLong = fmt.Errorf("%w: reply line longer than %d bytes", ErrProtocol, MaxLineBytes)

// ParseReplyLine splits one reply line into its code, whether more lines
// follow, and its text. It rejects anything but three digits followed by
// a space, a hyphen or the end of the line, and text holding control
// characters other than HT.
func ParseReplyLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("%w: short reply line %q", ErrProtocol, clip(line))
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("%w: reply line %q does not start with a 3-digit code", ErrProtocol, clip(line))
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("%w: reply code %d out of range in %q", ErrProtocol, code, clip(line))
	}
	if i := strings.IndexFunc(line, isControl); i >= 0 {
		// RFC 5321's textstring is HT and printable characters. A bare CR,
		// an ESC or a NUL in a reply would be copied into errors, logs and
		// transcripts, where it can forge lines or drive a terminal.
		return 0, false, "", fmt.Errorf("%w: reply line %q holds control character %q", ErrProtocol, clip(line), line[i])
	}
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case ' ':
		return code, false, line[4:], nil
	case '-':
		return code, true, line[4:], nil
	}
	return 0, false, "", fmt.Errorf("%w: reply line %q has %q after its code", ErrProtocol, clip(line), line[3])
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// ReadReply reads one complete (possibly multi-line) reply within the bounds
// above. Continuation lines must carry the same code.
func ReadReply(br *bufio.Reader) (*Reply, error) {
	r := &Reply{}
	total := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		total += len(line) + 2
		code, more, text, err := ParseReplyLine(line)
		if err != nil {
			return nil, err
		}
		if len(r.Lines) > 0 && code != r.Code {
			return nil, fmt.Errorf("%w: continuation line with code %d inside a %d reply", ErrProtocol, code, r.Code)
		}
		r.Code = code
		r.Lines = append(r.Lines, text)
		if !more {
			return r, nil
		}
		if len(r.Lines) >= MaxReplyLines {
			return nil, fmt.Errorf("%w: reply of more than %d lines", ErrProtocol, MaxReplyLines)
		}
		if total >= MaxReplyBytes {
			return nil, fmt.Errorf("%w: reply larger than %d bytes", ErrProtocol, MaxReplyBytes)
		}
	}
}

// clip shortens server text quoted in an error so that a hostile server
// cannot make our error messages huge.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // never split a multi-byte character
	}
	return s[:cut] + "…"
}

// Clip is clip for other packages quoting server text.
func Clip(s string) string { return clip(s) }
