package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/submit/submittest/script"
)

// echoClient answers every challenge with the same response.
type echoClient struct{ nexts int }

func (c *echoClient) Start() (string, []byte, error) { return "X-TEST", []byte("ir-secret"), nil }
func (c *echoClient) Next([]byte) ([]byte, error) {
	c.nexts++
	return []byte("resp-secret"), nil
}

// hostileAuthServer answers AUTH and every following line with challenge
// until it sees "*", which it answers with 501. It returns the lines it
// read.
func hostileAuthServer(t *testing.T, challenge string) (addr string, lines <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan []string, 1)
	go func() {
		var got []string
		defer func() { out <- got }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			got = append(got, l)
			if l == "*" {
				c.Write([]byte("501 5.0.0 Negotiation cancelled\r\n"))
				return
			}
			if _, err := c.Write([]byte(challenge)); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String(), out
}

func TestAuthExchangeIsBounded(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	// 20 lines of 900 base64 characters: each line is within the reply
	// bounds, the challenge (13,500 bytes decoded) is not.
	big := script.Reply(334, slices.Repeat([]string{b64(bytes.Repeat([]byte("abc"), 225))}, 20)...)
	tests := []struct {
		name      string
		challenge string
		nexts     int
		want      string
	}{
		{"endless challenges", "334 " + b64([]byte("again")) + "\r\n", MaxAuthChallenges, "more than 10 challenges"},
		{"oversized challenge", big, 0, "challenge larger than 12288 bytes"},
		{"not base64", "334 this is not base64!\r\n", 0, "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, lines := hostileAuthServer(t, tt.challenge)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			var tr bytes.Buffer
			c := NewConn(nc, NewTranscript(&tr, "", nil))
			mech := &echoClient{}
			_, err = c.Auth(mech)
			if !errors.Is(err, ErrAuthAborted) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want ErrAuthAborted saying %q", err, tt.want)
			}
			if mech.nexts != tt.nexts {
				t.Errorf("mechanism answered %d challenges; want %d", mech.nexts, tt.nexts)
			}
			got := <-lines
			if len(got) != tt.nexts+2 || got[len(got)-1] != "*" {
				t.Errorf("server read %d lines ending %q; want AUTH, %d responses and \"*\"", len(got), got[len(got)-1], tt.nexts)
			}
			if s := tr.String(); strings.Contains(s, b64([]byte("ir-secret"))) || strings.Contains(s, b64([]byte("resp-secret"))) ||
				!strings.Contains(s, "C: AUTH X-TEST [redacted]") {
				t.Errorf("transcript shows a payload or lacks the redacted AUTH:\n%s", s)
			}
		})
	}
}
