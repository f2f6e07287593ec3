package submittest

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// queueID renders the n-th accepted message's queue id the way Postfix
// does: upper-case hex, at least five digits.
func queueID(n int) string {
	return fmt.Sprintf("%05X", 0x4F2A0+n)
}

// queuedReply is the final reply to DATA. go-smtp answers a nil error with
// a bare "OK: queued"; an *SMTPError with a 2xx code is written as is,
// which is how a real server's queue id reaches the client.
func queuedReply(id string) error {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + id}
}

// rejection returns the configured refusal of a recipient, or nil.
func (o Options) rejection(rcpt string) error {
	reply, ok := o.RejectRecipients[rcpt]
	if !ok {
		return nil
	}
	return parseReply(reply, 550, smtp.EnhancedCodeNotSet)
}

// parseReply turns "550 5.1.1 no such user" into an *smtp.SMTPError. A
// reply without a valid code gets defCode; one without an enhanced code
// gets noEnh (smtp.EnhancedCodeNotSet for X.0.0, smtp.NoEnhancedCode for
// none).
func parseReply(reply string, defCode int, noEnh smtp.EnhancedCode) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: defCode, EnhancedCode: noEnh, Message: reply}
	code, rest, _ := strings.Cut(strings.TrimSpace(reply), " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 200 || n > 599 {
		return e
	}
	e.Code, e.Message = n, rest
	if enh, msg, ok := strings.Cut(rest, " "); ok {
		var ec smtp.EnhancedCode
		parts := strings.Split(enh, ".")
		if len(parts) == 3 {
			valid := true
			for i, p := range parts {
				if ec[i], err = strconv.Atoi(p); err != nil {
					valid = false
				}
			}
			if valid {
				e.EnhancedCode, e.Message = ec, msg
			}
		}
	}
	return e
}

// perConnLimit enforces Options.MaxMessagesPerConn at MAIL FROM: the 421 is
// written and the connection closed, as a server ending a session does.
func (s *session) perConnLimit() error {
	limit := s.l.opts.MaxMessagesPerConn
	if limit <= 0 {
		return nil
	}
	srv := s.l.srv
	srv.mu.Lock()
	n := s.t.rec.Messages
	srv.mu.Unlock()
	if n < limit {
		return nil
	}
	io.WriteString(s.c.Conn(), "421 4.7.0 Too many messages on this connection\r\n")
	s.t.Close()
	return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many messages on this connection"}
}

// markClosed records that the connection of rec was closed.
func (s *Server) markClosed(rec *connRecord) {
	s.mu.Lock()
	rec.Closed = true
	s.mu.Unlock()
}
