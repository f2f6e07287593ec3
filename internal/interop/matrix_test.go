package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/probe"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
)

// TestMatrix runs the six checks of the interoperability matrix (README.md,
// "Interoperability") on every server .ci/interop.sh started; a server
// whose variables are absent is skipped. The servers run in parallel, each
// one's checks in order (check 3 counts AUTH lines in the server's log).
func TestMatrix(t *testing.T) {
	for i := range matrixServers {
		s := &matrixServers[i]
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			l := liveServer(t, s)
			res := results.server(l)
			t.Run("1-auth", func(t *testing.T) { l.checkAuth(t, res.check(t, "auth")) })
			t.Run("2-stored", func(t *testing.T) { l.checkStored(t, res.check(t, "stored")) })
			t.Run("3-wrong-password", func(t *testing.T) { l.checkWrongPassword(t, res.check(t, "wrong_password")) })
			t.Run("4-extensions", func(t *testing.T) { l.checkExtensions(t, res.check(t, "extensions")) })
			t.Run("5-probe", func(t *testing.T) { l.checkProbe(t, res.check(t, "probe")) })
			t.Run("6-mailer", func(t *testing.T) { l.checkMailer(t, res.check(t, "mailer")) })
			res.finish(l)
		})
	}
}

func (l *live) dialer(auth submit.Auth, cands ...tlsmode.Candidate) *submit.Dialer {
	if cands == nil {
		cands = l.candidates()
	}
	return &submit.Dialer{
		Candidates: cands,
		TLSConfig:  &tls.Config{RootCAs: l.ca},
		Auth:       auth,
		Timeout:    20 * time.Second,
	}
}

func newID(server, what string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return fmt.Sprintf("<%x.%s.%s@portwise.test>", b, what, server)
}

// trickyBody has what a message body can get wrong on the way: lines that
// are or start with dots (dot-stuffing), UTF-8, trailing white space, a
// bare LF and a bare CR (portwise turns both into CRLF), and no line
// ending at the end (portwise adds one).
const trickyBody = "first line\r\n" +
	".\r\n" +
	"..\r\n" +
	".leading dot\r\n" +
	"..two leading dots\r\n" +
	"...\r\n" +
	" .space then dot\r\n" +
	"UTF-8: Grüße aus Köln — 日本語 — ½ € 📬\r\n" +
	"trailing spaces   \r\n" +
	"tab\tinside\r\n" +
	"\r\n" +
	"bare LF next\nbare CR next\rlast line, no line ending"

func testMessage(from, to, id, body string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: portwise interop " + id +
		"\r\nMessage-ID: " + id + "\r\nDate: " + time.Now().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
}

// normalized is what portwise sends for msg (before dot-stuffing, which
// the server undoes): every CRLF, bare CR and bare LF becomes CRLF, and
// the message ends with CRLF.
func normalized(msg string) []byte {
	s := strings.ReplaceAll(msg, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

// ------------------------------------------------------------ 1. AUTH

func (l *live) checkAuth(t *testing.T, r *checkResult) {
	ctx := context.Background()
	var done, na, failed []string
	for _, cand := range l.candidates() {
		c, err := l.dialer(submit.PasswordAuth(l.user, l.pass), cand).Dial(ctx, "127.0.0.1")
		if err != nil {
			t.Fatalf("%v: PasswordAuth: %v", cand, err)
		}
		_, param := c.Extension("AUTH")
		mechs := strings.Fields(strings.ToUpper(param))
		slices.Sort(mechs) // Mailpit lists them in a different order each time
		exts := map[string]bool{}
		for _, e := range []string{"DSN", "SMTPUTF8", "REQUIRETLS", "PIPELINING", "CHUNKING"} {
			exts[e], _ = c.Extension(e)
		}
		l.mu.Lock()
		if l.mechs == nil {
			l.mechs, l.exts = mechs, exts
		} else if !slices.Equal(l.mechs, mechs) {
			t.Errorf("%v offers AUTH %v after TLS, the other port %v", cand, mechs, l.mechs)
		}
		l.mu.Unlock()
		c.Quit()

		wantPassword := "LOGIN"
		if slices.Contains(mechs, "PLAIN") {
			wantPassword = "PLAIN"
		}
		for _, a := range []struct {
			name string
			auth submit.Auth
			mech string
		}{
			{"PasswordAuth", submit.PasswordAuth(l.user, l.pass), wantPassword},
			{"PlainAuth", submit.PlainAuth("", l.user, l.pass), "PLAIN"},
			{"LoginAuth", submit.LoginAuth(l.user, l.pass), "LOGIN"},
		} {
			if !slices.Contains(mechs, a.mech) {
				na = append(na, a.name)
				continue
			}
			c, err := l.dialer(a.auth, cand).Dial(ctx, "127.0.0.1")
			if err != nil {
				t.Errorf("%v %s: %v", cand, a.name, err)
				why := a.name + " failed on " + cand.Mode.String()
				if m := promptRE.FindStringSubmatch(err.Error()); m != nil {
					why += " (cancelled at the prompt " + m[1] + ")"
				}
				failed = append(failed, why)
				continue
			}
			if st, ok := c.ConnectionState(); !ok || len(st.VerifiedChains) == 0 {
				t.Errorf("%v %s: no verified TLS", cand, a.name)
			}
			if c.Mechanism() != a.mech {
				t.Errorf("%v %s: mechanism %q; want %q", cand, a.name, c.Mechanism(), a.mech)
			}
			if err := c.Noop(ctx); err != nil {
				t.Errorf("%v %s: NOOP after AUTH: %v", cand, a.name, err)
			}
			c.Quit()
			if cand == l.starttls {
				name := strings.TrimSuffix(a.name, "Auth")
				if a.name == "PasswordAuth" {
					name += " (" + a.mech + ")"
				}
				done = append(done, name)
			}
		}
	}
	r.Summary = "offers " + strings.Join(l.mechs, " ") + ": " + strings.Join(done, ", ") + " ok"
	if len(failed) > 0 {
		r.Summary += "; " + strings.Join(failed, "; ")
	}
	if len(na) > 0 {
		slices.Sort(na)
		r.Summary += "; " + strings.Join(slices.Compact(na), ", ") + " n/a (not offered)"
	}
}

var promptRE = regexp.MustCompile(`prompted "([^"]*)"`)

// ------------------------------------------------------------ 2. stored

func (l *live) checkStored(t *testing.T, r *checkResult) {
	ctx := context.Background()
	type sent struct {
		cand tlsmode.Candidate
		id   string
		want []byte
	}
	var all []sent
	for _, cand := range l.candidates() {
		id := newID(l.name, "stored-"+cand.Mode.String())
		msg := testMessage(l.user, l.rcpt, id, trickyBody)
		c, err := l.dialer(submit.PasswordAuth(l.user, l.pass), cand).Dial(ctx, "127.0.0.1")
		if err != nil {
			t.Fatalf("%v: %v", cand, err)
		}
		res, err := c.SendWith(ctx, l.user, []string{l.rcpt}, strings.NewReader(msg), nil)
		c.Quit()
		if err != nil {
			t.Fatalf("%v: %v", cand, err)
		}
		want := normalized(msg)
		all = append(all, sent{cand, id, want})
		// SendResult.Size is the message as the server counts it (RFC
		// 1870): normalised, without DATA's dot-stuffing.
		if res.Size != int64(len(want)) {
			t.Errorf("%v: SendResult.Size %d; want %d", cand, res.Size, len(want))
		}
	}
	ids := make([]string, len(all))
	for i, s := range all {
		ids[i] = s.id
	}
	got := l.wait(t, ids, true)
	var added []string
	for _, s := range all {
		copies := got[s.id]
		if len(copies) != 1 {
			t.Errorf("%v: %d stored copies of %s; want 1", s.cand, len(copies), s.id)
			continue
		}
		fields, err := l.compareStored(copies[0].data, s.want)
		if err != nil {
			t.Errorf("%v: %s (%s): %v", s.cand, s.id, copies[0].where, err)
			continue
		}
		for _, f := range fields {
			if !slices.Contains(added, f) {
				added = append(added, f)
			}
		}
	}
	ending := "CRLF"
	if l.lf {
		ending = "LF"
	}
	if len(added) == 0 {
		r.Summary = "identical, nothing added (" + ending + ")"
	} else {
		r.Summary = "identical after " + strings.Join(added, ", ") + " (" + ending + ")"
	}
}

// compareStored checks that got is want (in the store's line endings)
// preceded only by header fields the server is known to prepend, and
// returns the names of those fields.
func (l *live) compareStored(got, want []byte) ([]string, error) {
	if l.lf {
		want = bytes.ReplaceAll(want, []byte("\r\n"), []byte("\n"))
	}
	if !bytes.HasSuffix(got, want) {
		// Say where they part, counting from the end.
		i := 0
		for i < len(got) && i < len(want) && got[len(got)-1-i] == want[len(want)-1-i] {
			i++
		}
		return nil, fmt.Errorf("stored message (%d bytes) does not end with the %d bytes sent: they differ %d bytes from the end: stored …%q, sent …%q",
			len(got), len(want), i, tail(got[:len(got)-i], 60), tail(want[:len(want)-i], 60))
	}
	prefix := string(got[:len(got)-len(want)])
	nl := "\r\n"
	if l.lf {
		nl = "\n"
	}
	if prefix == "" {
		return nil, nil
	}
	if !strings.HasSuffix(prefix, nl) {
		return nil, fmt.Errorf("the server's additions do not end a line: %q", tail([]byte(prefix), 80))
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSuffix(prefix, nl), nl) {
		if line != "" && (line[0] == ' ' || line[0] == '\t') && len(names) > 0 {
			continue // folded continuation of the previous field
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("the server added a line that is not a header field: %q", line)
		}
		if !slices.ContainsFunc(l.prepends, func(p string) bool { return strings.EqualFold(p, name) }) {
			return nil, fmt.Errorf("the server added %s:, which the matrix does not expect of %s (expected only %v)", name, l.name, l.prepends)
		}
		names = append(names, name)
	}
	return names, nil
}

func tail(b []byte, n int) []byte { return b[max(0, len(b)-n):] }

// ------------------------------------------------------------ 3. wrong password

var replyCode = regexp.MustCompile(`\b([45][0-9][0-9])[ -]([45]\.[0-9]{1,3}\.[0-9]{1,3})?`)

func (l *live) checkWrongPassword(t *testing.T, r *checkResult) {
	m := l.mark()
	wrong := "wrong-" + l.pass
	d := l.dialer(submit.PlainAuth("", l.user, wrong))
	d.FallbackDelay = time.Millisecond // both ports reach a secure session
	_, err := d.Dial(context.Background(), "127.0.0.1")
	n, lines := l.authLines(t, m)
	if err == nil {
		t.Fatal("Dial with a wrong password succeeded")
	}
	code := ""
	if c := replyCode.FindStringSubmatch(err.Error()); c != nil {
		code = strings.TrimSpace(c[1] + " " + c[2])
	}
	switch {
	case errors.Is(err, submit.ErrAuthFailed) && !submit.IsTemporary(err):
		r.Summary = "ErrAuthFailed (" + code + ")"
	case errors.Is(err, submit.ErrAuthFailed):
		t.Errorf("err = %v is a rejected credential, yet temporary", err)
		r.Summary = "ErrAuthFailed but temporary (" + code + ")"
	default:
		t.Errorf("err = %v; want errors.Is(err, submit.ErrAuthFailed)", err)
		r.Summary = "not ErrAuthFailed (" + code + ")"
		if l.badPassword4xx {
			t.Errorf("%s words a wrong password with a 4xx that internal/diag knows (testdata/providers): the knowledge must make it ErrAuthFailed", l.name)
		}
	}
	if n != 1 {
		t.Errorf("%s logged %d AUTH attempts; want exactly 1 (a refused credential must not be tried on the other port):\n%s", l.name, n, strings.Join(lines, "\n"))
	}
	r.Summary += fmt.Sprintf(", %d AUTH logged", n)
	if strings.Contains(err.Error(), wrong) {
		t.Error("the password appears in the error")
	}
	t.Logf("%s: %v", l.name, err)
}

// ------------------------------------------------------------ 4. extensions

// wireLog records the order of reads and writes on the TCP connections
// of a Dialer, to see how many flights the client sent.
type wireLog struct {
	mu     sync.Mutex
	events []byte // 'r' or 'w'
}

func (w *wireLog) add(e byte) {
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
}

func (w *wireLog) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// flights counts the runs of writes after event i: each run is one flight
// of the client, sent before it read anything more.
func (w *wireLog) flights(i int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	prev := byte('r')
	for _, e := range w.events[i:] {
		if e == 'w' && prev != 'w' {
			n++
		}
		prev = e
	}
	return n
}

type wireConn struct {
	net.Conn
	log *wireLog
}

func (c wireConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.log.add('r')
	}
	return n, err
}

func (c wireConn) Write(p []byte) (int, error) {
	c.log.add('w')
	return c.Conn.Write(p)
}

type wireDialer struct{ log *wireLog }

func (d wireDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return wireConn{c, d.log}, nil
}

// syncBuffer is a bytes.Buffer safe for the Dialer's transcript.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (l *live) checkExtensions(t *testing.T, r *checkResult) {
	if l.exts == nil {
		t.Fatal("check 1 did not run: the advertised extensions are unknown")
	}
	ctx := context.Background()
	wl := &wireLog{}
	var tr syncBuffer
	d := l.dialer(submit.PasswordAuth(l.user, l.pass), l.starttls)
	d.NetDialer = wireDialer{wl}
	d.Transcript = &tr
	c, err := d.Dial(ctx, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()

	var parts, absent []string
	// What the server does not offer must be refused before MAIL FROM.
	refuse := func(ext string, opts *submit.SendOptions, rcpt string) {
		before := strings.Count(tr.String(), "MAIL FROM")
		_, err := c.SendWith(ctx, l.user, []string{rcpt}, strings.NewReader("Subject: x\r\n\r\nx\r\n"), opts)
		if !errors.Is(err, submit.ErrExtensionMissing) {
			t.Errorf("%s not advertised: SendWith = %v; want ErrExtensionMissing", ext, err)
		}
		if strings.Count(tr.String(), "MAIL FROM") != before {
			t.Errorf("%s not advertised: MAIL FROM was sent anyway", ext)
		}
	}
	envid := fmt.Sprintf("pw-%x", time.Now().UnixNano())
	opts := &submit.SendOptions{}
	rcpt := l.rcpt
	if l.exts["DSN"] {
		opts.DSN = &submit.DSNOptions{Notify: []string{"SUCCESS", "FAILURE"}, EnvelopeID: envid, Return: "HDRS"}
	} else {
		refuse("DSN", &submit.SendOptions{DSN: &submit.DSNOptions{EnvelopeID: envid}}, l.rcpt)
		absent = append(absent, "DSN")
	}
	if l.exts["REQUIRETLS"] {
		opts.RequireTLS = true
	} else {
		refuse("REQUIRETLS", &submit.SendOptions{RequireTLS: true}, l.rcpt)
		absent = append(absent, "REQUIRETLS")
	}
	if l.exts["SMTPUTF8"] {
		rcpt = l.utf8rcpt
	} else {
		refuse("SMTPUTF8", nil, l.utf8rcpt)
		absent = append(absent, "SMTPUTF8")
	}

	id := newID(l.name, "extensions")
	msg := testMessage(l.user, rcpt, id, "extensions\r\n")
	mark := l.mark()
	w0, t0 := wl.len(), len(tr.String())
	if _, err := c.SendWith(ctx, l.user, []string{rcpt}, strings.NewReader(msg), opts); err != nil {
		t.Fatalf("SendWith(%+v) to %s: %v", opts, rcpt, err)
	}
	flights := wl.flights(w0)
	transcript := tr.String()[t0:]
	got := l.wait(t, []string{id}, true)[id]
	evidence := l.since(t, mark)
	for _, s := range got {
		evidence += "\n" + s.envelope + "\n" + string(headerOf(s.data))
	}
	t.Logf("%s: %d client flights; server evidence:\n%s", l.name, flights, evidence)

	if l.exts["DSN"] {
		if l.name == "postfix" {
			// Postfix does not log ENVID or NOTIFY; NOTIFY=SUCCESS makes it
			// deliver a success notice to the sender, carrying ENVID.
			if !l.grepRecent(t, "Original-Envelope-Id: "+envid, 30*time.Second) {
				t.Errorf("DSN: no success notice with Original-Envelope-Id %s in %s", envid, l.storePath)
			}
			parts = append(parts, "DSN (success notice with ENVID delivered)")
		} else if !strings.Contains(evidence, envid) || !regexp.MustCompile(`(?i)NOTIFY.{0,4}SUCCESS`).MatchString(evidence) {
			t.Errorf("DSN: the server did not record ENVID=%s and NOTIFY=SUCCESS", envid)
		} else {
			parts = append(parts, "DSN (server logged ENVID, NOTIFY)")
		}
	}
	if l.exts["SMTPUTF8"] {
		if !strings.Contains(evidence, l.utf8rcpt) {
			t.Errorf("SMTPUTF8: the server did not record the recipient %s", l.utf8rcpt)
		}
		if l.cmdLog && !regexp.MustCompile(`(?i)smtputf8`).MatchString(evidence) {
			t.Errorf("SMTPUTF8: the server's log does not show the SMTPUTF8 parameter")
		}
		parts = append(parts, "SMTPUTF8 (to "+l.utf8rcpt+")")
	}
	if l.exts["REQUIRETLS"] {
		if !regexp.MustCompile(`(?i)requiretls`).MatchString(evidence) {
			t.Errorf("REQUIRETLS: the server did not record it")
		}
		parts = append(parts, "REQUIRETLS (server logged it)")
	}
	switch {
	case l.exts["PIPELINING"] && l.exts["CHUNKING"]:
		if flights != 1 {
			t.Errorf("PIPELINING and CHUNKING advertised, but the client sent %d flights for one message; want 1 (envelope and BDAT LAST)", flights)
		}
		parts = append(parts, "PIPELINING and CHUNKING (envelope and BDAT LAST in one flight)")
	case l.exts["PIPELINING"]:
		if flights > 2 {
			t.Errorf("PIPELINING advertised, but the client sent %d flights for one message; want 2 (envelope, body)", flights)
		}
		parts = append(parts, "PIPELINING (envelope in one flight)")
	case l.exts["CHUNKING"]:
		if flights < 3 {
			t.Errorf("no PIPELINING, but the client sent only %d flights (MAIL, RCPT, BDAT expected one by one)", flights)
		}
		parts = append(parts, "CHUNKING without PIPELINING (one command at a time, then BDAT LAST)")
	default:
		if flights < 4 {
			t.Errorf("no PIPELINING, but the client sent only %d flights (MAIL, RCPT, DATA, body expected one by one)", flights)
		}
		parts = append(parts, "no PIPELINING (envelope one command at a time)")
	}
	if l.exts["PIPELINING"] {
		if l.name == "exim" && !regexp.MustCompile(` L\.? `).MatchString(evidence) {
			t.Errorf("PIPELINING: Exim's <= line does not mark the message as pipelined (L)")
		}
	}
	if l.exts["CHUNKING"] {
		if strings.Contains(transcript, "C: DATA") || !regexp.MustCompile(`C: BDAT \d+ LAST`).MatchString(transcript) {
			t.Errorf("CHUNKING: want the message sent with one BDAT LAST; transcript:\n%s", transcript)
		}
	} else if !strings.Contains(transcript, "C: DATA") {
		t.Errorf("no CHUNKING: want the message sent with DATA; transcript:\n%s", transcript)
	}
	r.Summary = strings.Join(parts, ", ")
	if len(absent) > 0 {
		r.Summary += "; not offered, so refused before MAIL FROM: " + strings.Join(absent, ", ")
	}
}

// grepRecent reports whether a file in the store changed in the last
// minute holds needle, polling up to wait.
func (l *live) grepRecent(t *testing.T, needle string, wait time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		out, _ := exec.Command("find", l.storePath, "-type", "f", "-mmin", "-2", "-exec", "grep", "-l", "-F", "-e", needle, "{}", "+").Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ------------------------------------------------------------ 5. probe vs openssl

type opensslView struct {
	version  string   // "TLS 1.3"
	names    []string // SANs of the leaf
	verified bool
	raw      string
}

var (
	// "Protocol  : TLSv1.2" in the session block when openssl prints one
	// (not for TLS 1.3, whose session comes later); else "New, TLSv1.3,",
	// which for TLS 1.2 and older names the cipher's version, not the
	// protocol's.
	opensslProto  = regexp.MustCompile(`(?m)^\s*Protocol\s*:\s*(TLSv1(?:\.\d)?)`)
	opensslNew    = regexp.MustCompile(`(?m)^New, (TLSv1(?:\.\d)?), Cipher is (\S+)`)
	opensslVerify = regexp.MustCompile(`Verify return code: (\d+)`)
)

func (l *live) openssl(t *testing.T, cand tlsmode.Candidate) opensslView {
	t.Helper()
	args := []string{"s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", cand.Port), "-CAfile", l.caFile, "-verify_ip", "127.0.0.1"}
	if cand.Mode == tlsmode.StartTLS {
		args = append(args, "-starttls", "smtp")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	out, err := cmd.CombinedOutput() // stdin is empty: s_client closes after the handshake
	v := opensslView{raw: string(out), version: opensslVersion(string(out))}
	if m := opensslVerify.FindStringSubmatch(v.raw); m != nil {
		v.verified = m[1] == "0"
	}
	if blk, _ := pem.Decode(out[max(0, bytes.Index(out, []byte("-----BEGIN CERTIFICATE-----"))):]); blk != nil {
		if cert, err := x509.ParseCertificate(blk.Bytes); err == nil {
			v.names = append(v.names, cert.DNSNames...)
			for _, ip := range cert.IPAddresses {
				v.names = append(v.names, ip.String())
			}
		}
	}
	if v.version == "" || v.names == nil {
		t.Fatalf("openssl %s: %v; could not read its output:\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// acceptsLegacyTLS reports whether openssl, allowed TLS 1.0 and 1.1 only
// (at security level 0, so its own defaults refuse nothing), completes a
// handshake with the port.
func (l *live) acceptsLegacyTLS(t *testing.T, cand tlsmode.Candidate) bool {
	args := []string{"s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", cand.Port), "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}
	if cand.Mode == tlsmode.StartTLS {
		args = append(args, "-starttls", "smtp")
	}
	out, _ := exec.Command("openssl", args...).CombinedOutput()
	v := opensslVersion(string(out))
	return v == "TLS 1.0" || v == "TLS 1.1"
}

// opensslVersion is the TLS version s_client negotiated, as probe writes
// it ("TLS 1.3"); "" when the handshake failed.
func opensslVersion(out string) string {
	m := opensslNew.FindStringSubmatch(out)
	if m == nil || m[2] == "(NONE)" {
		return ""
	}
	p := m[1]
	if pm := opensslProto.FindStringSubmatch(out); pm != nil {
		p = pm[1]
	}
	return map[string]string{"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}[p]
}

// ehloInClear returns the capabilities a STARTTLS port offers before TLS.
func ehloInClear(t *testing.T, port int) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	read := func() []string {
		var lines []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading from port %d: %v", port, err)
			}
			line = strings.TrimRight(line, "\r\n")
			lines = append(lines, line)
			if len(line) < 4 || line[3] != '-' {
				return lines
			}
		}
	}
	read()
	fmt.Fprintf(c, "EHLO probe.portwise.test\r\n")
	var caps []string
	for _, line := range read()[1:] {
		caps = append(caps, line[4:])
	}
	fmt.Fprintf(c, "QUIT\r\n")
	return caps
}

// portwiseCLI is cmd/portwise, built once for the tests that run it.
var portwiseCLI struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func portwiseBinary(t *testing.T) string {
	t.Helper()
	portwiseCLI.once.Do(func() {
		portwiseCLI.dir, portwiseCLI.err = os.MkdirTemp("", "portwise-interop-cli-")
		if portwiseCLI.err != nil {
			return
		}
		portwiseCLI.path = filepath.Join(portwiseCLI.dir, "portwise")
		out, err := exec.Command("go", "build", "-o", portwiseCLI.path, "github.com/portwise/portwise/cmd/portwise").CombinedOutput()
		if err != nil {
			portwiseCLI.err = fmt.Errorf("go build ./cmd/portwise: %v\n%s", err, out)
		}
	})
	if portwiseCLI.err != nil {
		t.Fatal(portwiseCLI.err)
	}
	return portwiseCLI.path
}

// cliProbe runs portwise probe -json, as the README shows it, on cands.
func (l *live) cliProbe(t *testing.T, cands []tlsmode.Candidate) *probe.Report {
	t.Helper()
	var ports []string
	for _, c := range cands {
		ports = append(ports, fmt.Sprintf("%d/%s", c.Port, c.Mode))
	}
	args := []string{"probe", "-json", "-ca", l.caFile, "-port", strings.Join(ports, ","), "-timeout", "15s", "127.0.0.1"}
	cmd := exec.Command(portwiseBinary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("portwise %s: %v (a usable port exists: want exit status 0)\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rep probe.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("portwise probe -json: %v\n%s", err, out)
	}
	return &rep
}

func findingCodes(pr probe.PortReport) []string {
	var codes []string
	for _, f := range pr.Findings {
		codes = append(codes, f.Code)
	}
	slices.Sort(codes)
	return codes
}

func (l *live) checkProbe(t *testing.T, r *checkResult) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cands := l.candidates()
	rep, err := probe.Run(ctx, "127.0.0.1", probe.Options{
		Candidates: cands,
		TLSConfig:  &tls.Config{RootCAs: l.ca},
		Timeout:    15 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ports) != len(cands) {
		t.Fatalf("%d port reports; want %d", len(rep.Ports), len(cands))
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Logf("probe report:\n%s", text.String())
	// The command line must report what probe.Run does.
	cli := l.cliProbe(t, cands)
	if len(cli.Ports) != len(rep.Ports) {
		t.Fatalf("portwise probe -json: %d ports; probe.Run %d", len(cli.Ports), len(rep.Ports))
	}
	for i, pr := range rep.Ports {
		cp := cli.Ports[i]
		if cp.Port != pr.Port || cp.TLSVersion != pr.TLSVersion || !slices.Equal(cp.CertSubjects, pr.CertSubjects) ||
			cp.CertVerified != pr.CertVerified || !slices.Equal(findingCodes(cp), findingCodes(pr)) {
			t.Errorf("%v: portwise probe -json says %s %v verified=%v %v; probe.Run %s %v verified=%v %v", cands[i],
				cp.TLSVersion, cp.CertSubjects, cp.CertVerified, findingCodes(cp), pr.TLSVersion, pr.CertSubjects, pr.CertVerified, findingCodes(pr))
		}
	}
	var found []string
	var views []string
	for i, pr := range rep.Ports {
		cand := cands[i]
		if pr.Reachability != probe.ReachOpen || !pr.Usable {
			t.Errorf("%v: reach %s, usable %v (%s)", cand, pr.Reachability, pr.Usable, pr.Error)
		}
		ov := l.openssl(t, cand)
		if pr.TLSVersion != ov.version {
			t.Errorf("%v: probe says %q, openssl %q", cand, pr.TLSVersion, ov.version)
		}
		pn, on := slices.Clone(pr.CertSubjects), slices.Clone(ov.names)
		slices.Sort(pn)
		slices.Sort(on)
		if !slices.Equal(pn, on) {
			t.Errorf("%v: probe's certificate names %v, openssl's %v", cand, pn, on)
		}
		if pr.CertVerified != ov.verified {
			t.Errorf("%v: probe says verified=%v (%s), openssl %v", cand, pr.CertVerified, pr.CertError, ov.verified)
		}
		views = append(views, fmt.Sprintf("%s, %s", ov.version, strings.Join(on, " + ")))

		// Every finding must be true of the server, and those the matrix
		// expects of it must be there.
		want := l.findings[cand.Mode]
		var codes []string
		for _, f := range pr.Findings {
			codes = append(codes, f.Code)
			if !slices.Contains(want, f.Code) {
				t.Errorf("%v: finding %s (%s): %s — not expected of %s", cand, f.Code, f.Severity, f.Message, l.name)
			}
			if f.Code == probe.CodeAuthBeforeTLS {
				clear := ehloInClear(t, cand.Port)
				if !slices.ContainsFunc(clear, func(c string) bool { return strings.HasPrefix(strings.ToUpper(c), "AUTH") }) {
					t.Errorf("%v: probe reports auth-before-tls, but EHLO in clear is %v", cand, clear)
				}
				l.observe("AUTH before STARTTLS: %v", clear)
			}
			if f.Code == probe.CodeTLSLegacy && !l.acceptsLegacyTLS(t, cand) {
				t.Errorf("%v: probe reports tls-legacy-accepted, but openssl cannot negotiate TLS 1.0 or 1.1", cand)
			}
		}
		for _, w := range want {
			if !slices.Contains(codes, w) {
				t.Errorf("%v: expected finding %s is missing", cand, w)
			}
		}
		if cand.Mode == tlsmode.StartTLS && len(pr.AuthMechsBeforeTLS) == 0 && slices.Contains(want, probe.CodeAuthBeforeTLS) {
			t.Errorf("%v: no AUTH mechanisms before TLS in the report", cand)
		}
		for _, c := range codes {
			found = append(found, cand.Mode.String()+": "+c)
		}
		l.mu.Lock()
		l.bannerByMode[cand.Mode] = pr.Banner
		l.mu.Unlock()
	}
	verified := "verified"
	for _, pr := range rep.Ports {
		if !pr.CertVerified {
			verified = "NOT verified"
		}
	}
	slices.Sort(views)
	r.Summary = "probe.Run, portwise probe -json and openssl agree on both ports: " + strings.Join(slices.Compact(views), "; ") + ", " + verified + "; findings: "
	if len(found) == 0 {
		r.Summary += "none"
	} else {
		r.Summary += strings.Join(found, ", ") + " (true)"
	}
}

// ------------------------------------------------------------ 6. Mailer

func (l *live) checkMailer(t *testing.T, r *checkResult) {
	const goroutines, per, maxConns = 8, 20, 3
	d := l.dialer(submit.PasswordAuth(l.user, l.pass))
	var mu sync.Mutex
	dials := 0
	ctx, cancel := context.WithTimeout(submit.WithTrace(context.Background(), &submit.Trace{
		WinnerChosen: func(submit.Attempt) { mu.Lock(); dials++; mu.Unlock() },
	}), 3*time.Minute)
	defer cancel()
	m := &submit.Mailer{Dialer: d, Host: "127.0.0.1", MaxConns: maxConns}
	defer m.Close()

	ids := make(chan string, goroutines*per)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				id := newID(l.name, fmt.Sprintf("mailer-%d-%d", g, i))
				msg := testMessage(l.user, l.rcpt, id, fmt.Sprintf("message %d of goroutine %d\r\n", i, g))
				if err := m.Send(ctx, l.user, []string{l.rcpt}, strings.NewReader(msg)); err != nil {
					t.Errorf("goroutine %d message %d: %v", g, i, err)
					return
				}
				ids <- id
			}
		})
	}
	wg.Wait()
	close(ids)
	t.Logf("%d messages sent in %v", goroutines*per, time.Since(start).Round(time.Millisecond))
	var all []string
	for id := range ids {
		all = append(all, id)
	}
	if len(all) != goroutines*per {
		t.Fatalf("%d of %d messages sent", len(all), goroutines*per)
	}
	l.wait(t, all, false)
	t.Logf("all %d in the store after %v", len(all), time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second) // a duplicate would arrive by now
	want := map[string]bool{}
	for _, id := range all {
		want[id] = true
	}
	got := l.all(t, want)
	dup := 0
	for _, id := range all {
		if n := len(got[id]); n != 1 {
			t.Errorf("%s stored %d times; want once", id, n)
			dup++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if dials > 2*maxConns {
		t.Errorf("%d connections for %d messages with WithMaxConns(%d); want the pool reused", dials, len(all), maxConns)
	}
	r.Summary = fmt.Sprintf("%d/%d stored exactly once, %d connections", len(all)-dup, len(all), dials)
}
