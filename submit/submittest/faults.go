package submittest

import (
	"bytes"
	"fmt"
)

// Fault is a misbehaviour injected on one listener. Faults combine: a
// listener given StripSTARTTLS and AuthBeforeTLS is a classic downgrade.
type Fault int

const (
	// NoFault is a well-behaved listener.
	NoFault Fault = iota
	// StripSTARTTLS removes the STARTTLS line from the EHLO reply, as a
	// man in the middle would. The server still accepts STARTTLS if sent.
	StripSTARTTLS
	// MaskSTARTTLS replaces STARTTLS with XXXXXXXA in the EHLO reply and in the
	// client's command, as some firewalls do, so the STARTTLS command fails
	// (go-smtp answers "501 5.5.2 Bad command").
	MaskSTARTTLS
	// RejectSTARTTLS advertises STARTTLS but answers the command with
	// Options.STARTTLSReply (default "454 4.7.0 TLS not available") and keeps
	// the session in clear. A 421 reply also closes the connection.
	RejectSTARTTLS
	// InjectAfterSTARTTLS appends Options.Injection (default
	// "250-PIPELINING\r\n250 AUTH PLAIN\r\n") to the "220 Ready to start TLS"
	// reply, in the same write, before the handshake.
	InjectAfterSTARTTLS
	// Blackhole accepts TCP connections and never sends a byte nor closes
	// them until the Server is closed.
	Blackhole
	// Refuse is a closed port: nothing listens, so a connection is refused.
	Refuse
	// ClearOnImplicit makes a listener answer in clear with a 220 banner,
	// like a STARTTLS server on port 465, whatever mode it was asked for.
	ClearOnImplicit
	// AuthBeforeTLS advertises and accepts AUTH PLAIN LOGIN before TLS on a
	// StartTLS listener, so tests can prove a client never uses it.
	AuthBeforeTLS
	// DropAfterDot closes the connection without a reply once the final "."
	// of DATA has arrived. The message is still recorded in Messages: the
	// server got it, only the client cannot know.
	DropAfterDot
	// Reply421MidSession answers MAIL FROM with "421 4.3.2 Service shutting
	// down" and closes the connection.
	Reply421MidSession
	// PlainOnly is a plaintext listener without TLS: neither STARTTLS nor AUTH
	// is offered, as on an IP-authorised relay.
	PlainOnly
)

var faultNames = [...]string{
	NoFault:             "NoFault",
	StripSTARTTLS:       "StripSTARTTLS",
	MaskSTARTTLS:        "MaskSTARTTLS",
	RejectSTARTTLS:      "RejectSTARTTLS",
	InjectAfterSTARTTLS: "InjectAfterSTARTTLS",
	Blackhole:           "Blackhole",
	Refuse:              "Refuse",
	ClearOnImplicit:     "ClearOnImplicit",
	AuthBeforeTLS:       "AuthBeforeTLS",
	DropAfterDot:        "DropAfterDot",
	Reply421MidSession:  "Reply421MidSession",
	PlainOnly:           "PlainOnly",
}

// String returns the constant's name, e.g. "StripSTARTTLS".
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// faultSet is the faults of one listener as flags, read on every line.
type faultSet uint32

func makeFaultSet(faults []Fault) faultSet {
	var fs faultSet
	for _, f := range faults {
		if f > NoFault && int(f) < len(faultNames) {
			fs |= 1 << f
		}
	}
	return fs
}

func (fs faultSet) has(f Fault) bool { return fs&(1<<f) != 0 }

// interceptsSTARTTLS reports whether the client's STARTTLS line must be
// caught before go-smtp sees it.
func (fs faultSet) interceptsSTARTTLS() bool {
	return fs.has(RejectSTARTTLS) || fs.has(MaskSTARTTLS)
}

// isSTARTTLSCmd reports whether go-smtp would take a client line for the
// STARTTLS command: it only looks at the first eight letters.
func isSTARTTLSCmd(line []byte) bool {
	const cmd = "STARTTLS"
	return len(line) >= len(cmd) && bytes.EqualFold(line[:len(cmd)], []byte(cmd))
}

// mayBecomeSTARTTLS reports whether an incomplete client line could still
// turn out to be the STARTTLS command, so that it must be held back until
// its end arrives. Anything else passes through at once (a BDAT chunk need
// not end with a newline, and the client waits for a reply after it).
func mayBecomeSTARTTLS(partial []byte) bool {
	const cmd = "STARTTLS"
	if len(partial) >= len(cmd) {
		return isSTARTTLSCmd(partial)
	}
	return bytes.EqualFold(partial, []byte(cmd[:len(partial)]))
}

// rewriteReplyLine applies the EHLO faults to one server line (without
// CRLF): drop removes it, changed replaces it with out.
func rewriteReplyLine(fs faultSet, line []byte) (out []byte, changed, drop bool) {
	if len(line) < 4 || !bytes.HasPrefix(line, []byte("250")) || !bytes.EqualFold(bytes.TrimSpace(line[4:]), []byte("STARTTLS")) {
		return nil, false, false
	}
	switch {
	case fs.has(StripSTARTTLS) && line[3] == '-':
		// go-smtp always ends the EHLO reply with SIZE, so STARTTLS is never
		// the last line and can simply go.
		return nil, false, true
	case fs.has(MaskSTARTTLS):
		return append(line[:4:4], "XXXXXXXA"...), true, false
	}
	return nil, false, false
}
