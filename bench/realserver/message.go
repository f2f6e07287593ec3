package main

import (
	"bytes"
	"fmt"
	"strings"

	mail "github.com/wneessen/go-mail"
)

// messageSize is the size of the message every client sends, headers
// included, with CRLF line endings.
const messageSize = 2048

// subject and date are fixed so that every message is the same bytes.
const (
	subject = "portwise real-server benchmark"
	date    = "Sat, 05 Dec 2026 12:00:00 +0000"
)

// header is the message's header, CRLF line endings.
func header(from, to string) string {
	return "From: <" + from + ">\r\n" +
		"To: <" + to + ">\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: " + date + "\r\n" +
		"Message-ID: <realserver@example.test>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n"
}

// message is the raw message the Mailer, net/smtp and Nodemailer send:
// exactly messageSize bytes, 7-bit text in lines of at most 74 characters,
// none starting with a dot.
func message(from, to string) []byte {
	var b bytes.Buffer
	b.WriteString(header(from, to))
	b.WriteString(body(messageSize - b.Len()))
	if b.Len() != messageSize {
		panic(fmt.Sprintf("message is %d bytes, not %d", b.Len(), messageSize))
	}
	return b.Bytes()
}

// body is n (at least 3) bytes of text in CRLF lines of 72 characters,
// the last one of 1 to 74: short enough that go-mail's quoted-printable
// leaves them as they are.
func body(n int) string {
	var b strings.Builder
	for line := 0; ; line++ {
		w := 72
		if left := n - b.Len(); left < 74+3 {
			w = left - 2
		}
		b.WriteString(strings.Repeat(string(rune('a'+line%26)), w))
		b.WriteString("\r\n")
		if b.Len() == n {
			return b.String()
		}
	}
}

// lfText is msg with LF line endings, as smtp-source's -F reads a file:
// it sends each line with CRLF.
func lfText(msg []byte) []byte {
	return bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
}

// goMailMsg composes the same message with go-mail, which has no way to
// send bytes as they are: the text of message's body, with its own
// defaults (quoted-printable, UTF-8, its Message-ID and X-Mailer).
func goMailMsg(from, to string, raw []byte) (*mail.Msg, error) {
	_, text, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return nil, fmt.Errorf("message has no body")
	}
	m := mail.NewMsg()
	if err := m.From(from); err != nil {
		return nil, err
	}
	if err := m.To(to); err != nil {
		return nil, err
	}
	m.Subject(subject)
	m.SetBodyString(mail.TypeTextPlain, string(text))
	return m, nil
}
