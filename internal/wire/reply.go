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

	"github.com/portwise/portwise/internal/untrusted"
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

// Text returns the reply's lines joined by newlines, as the server sent
// them: untrusted, for programs only.
func (r *Reply) Text() string { return strings.Join(r.Lines, "\n") }

// Enhanced returns the RFC 3463 enhanced status code the reply starts with
// ("5.7.8"; "" when it has none, or one whose class disagrees with the
// code), and the text of its lines without it, joined by newlines.
func (r *Reply) Enhanced() (code, text string) {
	if len(r.Lines) == 0 {
		return "", ""
	}
	first, _, _ := strings.Cut(r.Lines[0], " ")
	if !validEnhanced(first, r.Code) {
		return "", r.Text()
	}
	lines := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		if rest, ok := strings.CutPrefix(l, first); ok && (rest == "" || rest[0] == ' ') {
			l = strings.TrimPrefix(rest, " ")
		}
		lines[i] = l
	}
	return first, strings.Join(lines, "\n")
}

// String renders the reply on one line, as a person would quote it:
// "535 5.7.8 Username and Password not accepted", with the server's text
// made safe and bounded (untrusted.Reply).
func (r *Reply) String() string {
	enh, text := r.Enhanced()
	s := strconv.Itoa(r.Code)
	if enh != "" {
		s += " " + enh
	}
	if text = strings.Join(strings.Fields(text), " "); text != "" {
		s += " " + untrusted.Reply(text)
	}
	return s
}

// Temporary reports a 4xx reply.
func (r *Reply) Temporary() bool { return r.Code/100 == 4 }

// Err returns the reply as the error of command ("MAIL FROM", "AUTH
// PLAIN", "" when the server spoke unasked, as in its greeting).
func (r *Reply) Err(command string) *ReplyError {
	return &ReplyError{Command: command, Reply: r}
}

// ReplyError is a reply that failed a command: the server refused it, or
// answered with a code the client cannot go on from.
type ReplyError struct {
	Command string
	Reply   *Reply
	// Note, when set, is what the client learnt beyond the reply (the
	// status and scope of XOAUTH2's error challenge), already safe.
	Note string
}

// Error is the reply as a person would quote it.
func (e *ReplyError) Error() string {
	s := e.Reply.String()
	if e.Note != "" {
		s += " (" + e.Note + ")"
	}
	return s
}

func validEnhanced(s string, code int) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || int(parts[0][0]-'0') != code/100 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
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
		return 0, false, "", fmt.Errorf("%w: short reply line %s", ErrProtocol, quote(line))
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("%w: reply line %s does not start with a 3-digit code", ErrProtocol, quote(line))
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("%w: reply code %d out of range in %s", ErrProtocol, code, quote(line))
	}
	if i := strings.IndexFunc(line, isControl); i >= 0 {
		// RFC 5321's textstring is HT and printable characters. A bare CR,
		// an ESC or a NUL in a reply would be copied into errors, logs and
		// transcripts, where it can forge lines or drive a terminal.
		return 0, false, "", fmt.Errorf("%w: reply line %s holds control character %s", ErrProtocol, quote(line), quote(line[i:i+1]))
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
	return 0, false, "", fmt.Errorf("%w: reply line %s has %s after its code", ErrProtocol, quote(line), quote(line[3:4]))
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

// quote shows a piece of server text in a protocol error.
func quote(s string) string { return `"` + untrusted.Text(s, 80) + `"` }
