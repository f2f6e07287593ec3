package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParseEHLO feeds arbitrary EHLO replies to the capability parser. The
// properties are what the session relies on: keywords are upper-cased
// words, STARTTLS is seen only when a line says it, AUTH mechanisms are
// upper-cased words, and a masked keyword is one of the keywords.
func FuzzParseEHLO(f *testing.F) {
	for _, s := range []string{
		"250-mx.example.com\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 SIZE 35882577\r\n",
		"250-mx\r\n250-XXXXXXXA\r\n250 AUTH PLAIN LOGIN\r\n",
		"250-mx\r\n250-auth=login plain\r\n250-AUTH  login   xoauth2 \r\n250 starttls\r\n",
		"250 mx only\r\n",
		"250-mx\r\n250- \r\n250-\t\r\n250 8BITMIME\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ReadReply(bufio.NewReader(strings.NewReader(in)))
		if err != nil {
			return
		}
		caps := ParseEHLO(r)
		if len(caps) > max(0, len(r.Lines)-1) {
			t.Fatalf("%d capabilities from %d lines", len(caps), len(r.Lines))
		}
		for k, v := range caps {
			// A keyword with a tab or other junk is kept, upper-cased; it
			// can never equal a real one.
			if k == "" || k != strings.ToUpper(k) || strings.Contains(k, " ") {
				t.Fatalf("keyword %q is not upper-cased or holds a space", k)
			}
			if v != strings.TrimSpace(v) {
				t.Fatalf("parameters %q of %s are not trimmed", v, k)
			}
			if !caps.Has(strings.ToLower(k)) {
				t.Fatalf("Has(%q) is false for a parsed keyword", strings.ToLower(k))
			}
		}
		if caps.Has("STARTTLS") && !slices.ContainsFunc(r.Lines[1:], func(l string) bool {
			kw, _, _ := strings.Cut(strings.TrimSpace(l), " ")
			return strings.EqualFold(kw, "STARTTLS")
		}) {
			t.Fatalf("STARTTLS seen in %q, which does not advertise it", in)
		}
		for _, m := range caps.AuthMechs() {
			if m == "" || m != strings.ToUpper(m) || strings.ContainsAny(m, " \t") {
				t.Fatalf("mechanism %q is not an upper-cased word", m)
			}
		}
		if k, ok := caps.MaskedKeyword(); ok && (!caps.Has(k) || k == "STARTTLS") {
			t.Fatalf("masked keyword %q is not a keyword of %v", k, caps)
		}
		if l := caps.List(); len(l) != len(caps) || !slices.IsSorted(l) {
			t.Fatalf("List() = %q", l)
		}
	})
}

// scriptedConn is a net.Conn whose server side is a fixed byte string:
// the fuzzer plays a hostile server without a socket.
type scriptedConn struct {
	r io.Reader
	w bytes.Buffer
}

func (c *scriptedConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptedConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *scriptedConn) Close() error                     { return nil }
func (c *scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

const fuzzSecret = "fuzz-secret-0x5ecre7"

// eagerMech answers every challenge with the secret, so a server that keeps
// challenging gets as many answers as the wire layer allows.
type eagerMech struct{}

func (eagerMech) Start() (string, []byte, error) { return "X-EAGER", []byte(fuzzSecret), nil }
func (eagerMech) Next(c []byte) ([]byte, error)  { return []byte(fuzzSecret), nil }

// FuzzAuth plays arbitrary server replies against an AUTH exchange: it must
// end, answer at most MaxAuthChallenges challenges, and never put the
// secret in the transcript.
func FuzzAuth(f *testing.F) {
	for _, s := range []string{
		"235 2.7.0 ok\r\n",
		"535 5.7.8 no\r\n",
		"334 \r\n235 ok\r\n",
		"334 bW9yZQ==\r\n334 bW9yZQ==\r\n334 bW9yZQ==\r\n235 ok\r\n",
		strings.Repeat("334 \r\n", 20),
		"334 not base64!\r\n501 aborted\r\n",
		"334-a\r\n334 b\r\n235 ok\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		nc := &scriptedConn{r: strings.NewReader(in)}
		var tr bytes.Buffer
		c := NewConn(nc, NewTranscript(&tr, "", nil))
		res, err := c.Auth(eagerMech{})
		if err == nil && (res.Final == nil || res.Final.Code == 334) {
			t.Fatalf("Auth returned no final reply: %+v", res)
		}
		sent := strings.Count(nc.w.String(), "\r\n")
		if sent > MaxAuthChallenges+2 { // AUTH, the answers, "*"
			t.Fatalf("%d client lines for %q", sent, in)
		}
		enc := base64.StdEncoding.EncodeToString([]byte(fuzzSecret))
		if strings.Contains(tr.String(), fuzzSecret) || strings.Contains(tr.String(), enc) {
			t.Fatalf("secret in the transcript:\n%s", tr.String())
		}
	})
}
