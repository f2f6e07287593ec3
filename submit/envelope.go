package submit

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/portwise/portwise/internal/untrusted"
)

// The envelope of one message: the checks that need no server, and the
// MAIL FROM and RCPT TO commands with the parameters the server's
// extensions allow.

// envelope is one message's MAIL FROM and RCPT TO commands, with the
// parameters the server's extensions allow.
type envelope struct {
	mail     string   // "MAIL FROM:<a> BODY=8BITMIME SIZE=n ..."
	rcpts    []string // the recipient addresses, in order
	rcptCmds []string // "RCPT TO:<b> NOTIFY=... ORCPT=...", one per recipient
	// size is the message's exact normalised size when it is held in
	// memory, -1 otherwise (SendOptions.Size is a declaration, not a count:
	// BDAT needs the count).
	size int64
	// chunking: the message goes with BDAT (RFC 3030), not DATA.
	chunking bool
}

// validate checks what needs no server: addresses and option values.
func validate(from string, to []string, o *SendOptions) error {
	if err := checkAddr("sender", from); err != nil {
		return err
	}
	if len(to) == 0 {
		return errors.New("submit: no recipients")
	}
	for _, rcpt := range to {
		if rcpt == "" {
			return errors.New("submit: empty recipient address")
		}
		if err := checkAddr("recipient", rcpt); err != nil {
			return err
		}
	}
	if o == nil || o.DSN == nil {
		return nil
	}
	dsn := o.DSN
	switch dsn.Return {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("submit: DSN Return %q: want \"FULL\" or \"HDRS\"", dsn.Return)
	}
	if id := dsn.EnvelopeID; len(id) > 100 || !printableASCII(id) {
		return fmt.Errorf("submit: DSN EnvelopeID %q: want at most 100 printable ASCII characters", id)
	}
	if len(dsn.Notify) > 0 {
		for _, n := range dsn.Notify {
			switch n {
			case "SUCCESS", "FAILURE", "DELAY":
			case "NEVER":
				if len(dsn.Notify) > 1 {
					return errors.New("submit: DSN Notify: NEVER cannot be combined with other conditions")
				}
			default:
				return fmt.Errorf("submit: DSN Notify %q: want NEVER, SUCCESS, FAILURE or DELAY", n)
			}
		}
	}
	for rcpt, orig := range dsn.OriginalRecipients {
		if !slices.Contains(to, rcpt) {
			return fmt.Errorf("submit: DSN OriginalRecipients has %q, which is not a recipient", rcpt)
		}
		if orig == "" || strings.ContainsAny(orig, "\r\n\x00") {
			return fmt.Errorf("submit: DSN original recipient %q for %q: %w", orig, rcpt, ErrBadAddress)
		}
	}
	return nil
}

// envelope builds the commands for one message, refusing what the server
// cannot take. validate has run.
func (c *Client) envelope(from string, to []string, msg io.Reader, o *SendOptions) (*envelope, error) {
	if o == nil {
		o = &SendOptions{}
	}
	var params []string
	if ok, _ := c.Extension("8BITMIME"); ok {
		params = append(params, "BODY=8BITMIME")
	}
	utf8 := !isASCII(from)
	for _, rcpt := range to {
		utf8 = utf8 || !isASCII(rcpt)
	}
	if utf8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return nil, fmt.Errorf("submit: %w: an address is not ASCII and the server on port %d does not advertise SMTPUTF8; nothing was sent — use ASCII addresses (punycode for the domain)", ErrExtensionMissing, c.cand.Port)
		}
		params = append(params, "SMTPUTF8")
	}
	size, known := knownSize(msg)
	exact := int64(-1)
	if known {
		exact = size
	}
	if o.Size > 0 {
		size, known = o.Size, true
	}
	if known {
		if limit, has := c.MaxMessageSize(); has && size > limit {
			return nil, fmt.Errorf("submit: %w: the message is %d bytes and the server on port %d accepts at most %d (SIZE); nothing was sent", ErrMessageTooLarge, size, c.cand.Port, limit)
		}
		if ok, _ := c.Extension("SIZE"); ok {
			params = append(params, "SIZE="+strconv.FormatInt(size, 10))
		}
	}
	if o.RequireTLS {
		ok, _ := c.Extension("REQUIRETLS")
		if !ok || c.tlsState == nil {
			return nil, fmt.Errorf("submit: %w: the message requires TLS all the way (REQUIRETLS) and the server on port %d does not advertise REQUIRETLS after TLS, so it could relay it in clear; nothing was sent", ErrExtensionMissing, c.cand.Port)
		}
		params = append(params, "REQUIRETLS")
	}
	dsn := o.DSN
	if dsn != nil {
		if ok, _ := c.Extension("DSN"); !ok {
			return nil, fmt.Errorf("submit: %w: delivery status notifications were requested and the server on port %d does not advertise DSN; nothing was sent — send without SendOptions.DSN, or through a server that supports it", ErrExtensionMissing, c.cand.Port)
		}
		if dsn.Return != "" {
			params = append(params, "RET="+dsn.Return)
		}
		if dsn.EnvelopeID != "" {
			params = append(params, "ENVID="+xtext(dsn.EnvelopeID))
		}
	}
	env := &envelope{mail: "MAIL FROM:<" + from + ">", rcpts: to, size: exact}
	if ok, _ := c.Extension("CHUNKING"); ok && !o.NoChunking {
		env.chunking = true
	}
	for _, p := range params {
		env.mail += " " + p
	}
	for _, rcpt := range to {
		cmd := "RCPT TO:<" + rcpt + ">"
		if dsn != nil {
			if len(dsn.Notify) > 0 {
				cmd += " NOTIFY=" + strings.Join(dsn.Notify, ",")
			}
			if orig, ok := dsn.OriginalRecipients[rcpt]; ok {
				cmd += " ORCPT=" + orcpt(orig)
			}
		}
		env.rcptCmds = append(env.rcptCmds, cmd)
	}
	return env, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// xtext encodes s as RFC 3461 §4 xtext: "+", "=", and bytes outside
// printable ASCII as "+HH".
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// orcpt renders an ORCPT value: "rfc822;" with xtext for an ASCII address,
// "utf-8;" with RFC 6533 utf-8-addr-xtext (every non-ASCII character and
// "\", "+", "=", controls and space as \x{HEX}) for the others, which stays
// ASCII so it needs no SMTPUTF8.
func orcpt(addr string) string {
	if isASCII(addr) {
		return "rfc822;" + xtext(addr)
	}
	var b strings.Builder
	b.WriteString("utf-8;")
	for _, r := range addr {
		if r <= ' ' || r >= 0x7f || r == '\\' || r == '+' || r == '=' {
			fmt.Fprintf(&b, `\x{%X}`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// checkAddr refuses an address that could inject a command or a
// parameter (CR, LF, NUL, an angle bracket), or that holds what no address
// has and what would deceive a person reading it in an error (another
// control character, a bidirectional override, bytes that are not UTF-8).
func checkAddr(kind, addr string) error {
	if strings.ContainsAny(addr, "\r\n\x00<>") {
		return fmt.Errorf("submit: %s address \"%s\" holds CR, LF, NUL or an angle bracket, which would inject a command: %w", kind, untrusted.Name(addr), ErrBadAddress)
	}
	if !utf8.ValidString(addr) || strings.IndexFunc(addr, untrusted.Escaped) >= 0 {
		return fmt.Errorf("submit: %s address \"%s\" holds a control character, a bidirectional override or bytes that are not UTF-8, which no address has: %w", kind, untrusted.Name(addr), ErrBadAddress)
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func upper(s string) string { return strings.ToUpper(s) }
