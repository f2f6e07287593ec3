// Package queueid finds the queue id in a server's final reply to a
// message: the handle a server gives the message it has just accepted, which
// its operator can look up in the server's logs or message trace.
//
// Parse recognises these formats (the reply text after the code; an enhanced
// status code in front is ignored):
//
//   - Postfix and servers that imitate its reply (SendGrid, Mailpit,
//     ZoneMTA, Mailjet): "2.0.0 Ok: queued as 4F2A1"
//   - Yandex: "2.0.0 Ok: queued on smtp3m.mail.yandex.net as 1430081058-6ltgNFKSir-iHEKdOrm"
//   - Exim, in its pre-4.97 and 4.97+ id formats, and GMX:
//     "OK id=1l3vRq-0000HP-OZ", "Requested mail action okay, completed: id=1M7usq-1u0N2z0f1m-0050HD"
//   - sendmail: "2.0.0 x8NKs6Tn012345 Message accepted for delivery", also
//     with two ids joined by a hyphen
//   - Gmail and Google Workspace: "2.0.0 OK  1700000000 a640c23a62f3a-a9a2b1d1c2dsi123456.100 - gsmtp",
//     with or without the timestamp
//   - Haraka: "Message Queued (51DE505A-C5B4-4ED3-9FA0-45ED43F49E96.1)"
//   - Amazon SES: "Ok 01000154dc729264-93fdd7ea-f039-43d6-91ed-653e8547867c-000000"
//   - Microsoft Exchange and Exchange Online Protection when they relay:
//     the number in "[InternalId=27685359203242, Hostname=…]", the id
//     Exchange's message tracking log records for the message
//
// These replies carry no queue id, and Parse returns "" for them: Microsoft
// 365 client submission ("2.0.0 OK <message-id> [Hostname=…]", which echoes
// the message's own Message-ID), go-smtp and the servers built on it such as
// maddy ("2.0.0 OK: queued"), Mailgun ("Great success"), chasquid (a random
// line from NetHack), aiosmtpd ("OK"), Nodemailer's smtp-server ("OK:
// message queued"), Stalwart ("2.0.0 Message queued for delivery.").
//
// An id is returned only when it is at most 128 bytes of printable ASCII
// without spaces; anything else yields "".
package queueid

import (
	"regexp"
	"strings"
)

// MaxLen bounds the length of an id Parse returns, so that a hostile server
// cannot make callers store or log an arbitrarily long string.
const MaxLen = 128

// enhanced matches an RFC 3463 enhanced status code at the start of a reply.
var enhanced = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}\s+`)

// patterns find a queue id, most specific first. The first group is the id.
// They run on the text with any leading enhanced status code removed.
var patterns = []*regexp.Regexp{
	// Gmail: "OK  1700000000 ID - gsmtp"; older replies lack the timestamp.
	regexp.MustCompile(`(?i)^OK\s+(?:\d{9,11}\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)\s+-\s+gsmtp\b`),
	// Postfix and its imitators.
	regexp.MustCompile(`(?i)\bqueued as ([A-Za-z0-9](?:[A-Za-z0-9._@-]*[A-Za-z0-9])?)`),
	// Yandex names the queueing host: "queued on HOST as ID".
	regexp.MustCompile(`(?i)\bqueued on [A-Za-z0-9.-]+ as ([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)`),
	// Exim, GMX.
	regexp.MustCompile(`(?i)(?:^|\s)id=([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)`),
	// Haraka: the transaction uuid in parentheses.
	regexp.MustCompile(`(?i)\bMessage Queued \(([A-Za-z0-9][A-Za-z0-9._-]*)\)`),
	// sendmail: "ID Message accepted for delivery"; "ID1-ID2" when the
	// message was split.
	regexp.MustCompile(`(?i)^([A-Za-z0-9]+(?:-[A-Za-z0-9]+)?) Message accepted for delivery`),
	// Amazon SES: "Ok" and its message id.
	regexp.MustCompile(`(?i)^Ok ([0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{6})\b`),
	// Exchange: the internal message id.
	regexp.MustCompile(`\[InternalId=(\d+)[,\]]`),
}

// Parse returns the queue id in the text of a server's final reply to a
// message (the text after the code, enhanced code included or not), or "".
func Parse(text string) string {
	text = strings.TrimSpace(text)
	text = enhanced.ReplaceAllLiteralString(text, "")
	for _, re := range patterns {
		m := re.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		if valid(m[1]) {
			return m[1]
		}
		return ""
	}
	return ""
}

// valid reports whether id is short, printable ASCII without spaces.
func valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
