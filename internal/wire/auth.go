package wire

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"
)

// Bounds on an AUTH exchange: a server cannot keep the client answering
// challenges forever or make it decode huge ones.
const (
	MaxAuthChallenges     = 10
	MaxAuthChallengeBytes = 12 << 10 // decoded
)

// ErrAuthAborted is returned when the client gave up on an AUTH exchange
// (an unexpected challenge, too many challenges) after sending "*".
var ErrAuthAborted = errors.New("AUTH exchange aborted by the client")

// RawChallenger is a SASL client that wants each challenge as the server
// sent it as well as decoded (nil when it was not base64), because some
// servers send LOGIN prompts in clear.
type RawChallenger interface {
	NextRaw(text string, decoded []byte) ([]byte, error)
}

// Auth runs one AUTH exchange (RFC 4954) with the initial response when the
// mechanism has one. It returns the server's final reply, and in any case
// whether a payload went out (res.Sent); err is non-nil
// only when the exchange did not reach one (I/O, protocol, or the mechanism
// refused a challenge, in which case "*" was sent and err wraps
// ErrAuthAborted). Every payload is redacted in the transcript. The last
// challenge is kept because some mechanisms (XOAUTH2) carry the reason for
// a failure there.
func (c *Conn) Auth(mech sasl.Client) (res AuthResult, err error) {
	return c.AuthThen(mech, nil)
}

// AuthThen is Auth that runs then, when set, with the mechanism's name,
// once the AUTH command went out and before its reply is read: a session
// opened with early pipelining reads there the replies owed before AUTH's
// (the banner, the EHLO reply). An error of then ends the exchange;
// res.Sent says whether the initial response went.
func (c *Conn) AuthThen(mech sasl.Client, then func(mech string) error) (res AuthResult, err error) {
	name, ir, err := mech.Start()
	if err != nil {
		return res, err
	}
	res.Mechanism = name
	line, shown := "AUTH "+name, "AUTH "+name
	if ir != nil {
		enc := "="
		if len(ir) > 0 {
			enc = base64.StdEncoding.EncodeToString(ir)
		}
		line += " " + enc
		shown += " [redacted]"
		res.Sent = true
	}
	if err := c.Cmd(line, shown); err != nil {
		return res, err
	}
	if then != nil {
		if err := then(name); err != nil {
			return res, err
		}
	}
	r, err := c.ReadReply()
	for n := 0; err == nil; n++ {
		if r.Code != 334 {
			res.Final = r
			return res, nil
		}
		if n >= MaxAuthChallenges {
			return res, c.abort(fmt.Errorf("%w: more than %d challenges", ErrAuthAborted, MaxAuthChallenges))
		}
		text := r.Text()
		if base64.StdEncoding.DecodedLen(len(text)) > MaxAuthChallengeBytes {
			return res, c.abort(fmt.Errorf("%w: challenge larger than %d bytes", ErrAuthAborted, MaxAuthChallengeBytes))
		}
		ch, derr := base64.StdEncoding.DecodeString(text)
		var resp []byte
		var merr error
		if raw, ok := mech.(RawChallenger); ok {
			if derr != nil {
				ch = nil
			}
			resp, merr = raw.NextRaw(text, ch)
		} else if derr != nil {
			return res, c.abort(fmt.Errorf("%w: challenge is not base64: %s", ErrAuthAborted, quote(text)))
		} else {
			resp, merr = mech.Next(ch)
		}
		res.LastChallenge = ch
		if merr != nil {
			return res, c.abort(fmt.Errorf("%w: %v", ErrAuthAborted, merr))
		}
		res.Sent = true
		r, err = c.Exchange(base64.StdEncoding.EncodeToString(resp), "[redacted]")
	}
	return res, err
}

// AuthResult is the outcome of an AUTH exchange that reached a final reply.
type AuthResult struct {
	Mechanism     string
	Final         *Reply
	LastChallenge []byte // the last decoded 334 challenge, if any
	// Sent reports that a payload of the mechanism (an initial response
	// or an answer to a challenge, that is, possibly the credential) was
	// written, even when the exchange then failed.
	Sent bool
}

func (c *Conn) abort(cause error) error {
	if _, err := c.Exchange("*", ""); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}
