package mailjob

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/riverqueue/river"
)

// Kind is the River job kind of Args, as stored in the river_job table.
const Kind = "portwise_send"

// Args are one message waiting to be sent: a River job's arguments. They
// hold the whole message, so that a worker needs nothing but the queue to
// send it, and its Message-ID, so that a retried job can be recognised in
// River's job list, in the server's logs and in the recipient's mailbox.
type Args struct {
	// MessageID is the message's Message-ID field, angle brackets
	// included. Jobs are unique by it (see InsertOpts).
	MessageID string `json:"message_id" river:"unique"`
	// From is the envelope sender (MAIL FROM).
	From string `json:"from"`
	// To are the envelope recipients (RCPT TO), Bcc included.
	To []string `json:"to"`
	// Message is the message as it is sent: header fields, a blank line,
	// the body. It is a []byte, which JSON stores as base64, because JSON
	// strings would silently turn an 8-bit body that is not UTF-8 into
	// U+FFFD.
	Message []byte `json:"message"`
}

// Kind returns Kind; it makes Args a river.JobArgs.
func (Args) Kind() string { return Kind }

// InsertOpts makes jobs unique by MessageID in River's default unique
// states (pending, scheduled, available, running, retryable, completed): a
// message enqueued twice, by a request retried by its client or a
// crashed producer run again, is sent once, and Insert reports the second
// as UniqueSkippedAsDuplicate. A cancelled or discarded job does not block
// its Message-ID, so once a person has checked an outcome that was unknown
// the message can be enqueued again on purpose.
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// NewArgs makes the job arguments for msg, taking MessageID from its
// Message-ID field. A message without one is refused: without it retries
// cannot be recognised, nor duplicates refused (NewMessageID makes one).
func NewArgs(from string, to []string, msg []byte) (Args, error) {
	if from == "" || len(to) == 0 {
		return Args{}, errors.New("mailjob: a message needs an envelope sender and at least one recipient")
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return Args{}, fmt.Errorf("mailjob: reading the message's header: %w", err)
	}
	id := strings.TrimSpace(m.Header.Get("Message-Id"))
	if id == "" {
		return Args{}, errors.New("mailjob: the message has no Message-ID field: add one (NewMessageID makes one) so that a retried job can be recognised")
	}
	return Args{MessageID: id, From: from, To: append([]string(nil), to...), Message: msg}, nil
}

// NewMessageID returns a new random Message-ID for domain, angle brackets
// included, e.g. "<3f9c...@example.com>".
func NewMessageID(domain string) string {
	var b [16]byte
	rand.Read(b[:])
	return "<" + hex.EncodeToString(b[:]) + "@" + domain + ">"
}
