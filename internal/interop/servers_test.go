package interop

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/tlsmode"
)

// A matrixServer is one real submission server of the interoperability
// matrix, started by .ci/servers/<name>.sh, which writes the
// PORTWISE_INTEROP_<NAME>_* variables (.ci/interop.sh collects them).
// What is written here about each server is what the matrix expects of it;
// the tests check it against the running server.
type matrixServer struct {
	name  string // as in .ci/servers/<name>.sh
	title string // for the README table

	// store is how messages are read back: "maildir" (every file under
	// STORE, recursively, one message each: Postfix, Exim, chasquid and
	// maddy's blob directory), "files" (STORE/*.eml with the envelope in
	// *.json beside it: our Haraka plugin and the smtp-server and aiosmtpd
	// scripts), "mailpit" (STORE lists Mailpit HTTP APIs).
	store string
	// lf: the store holds LF line endings, not the CRLF of the wire
	// (maildirs written by Postfix, Exim and chasquid's delivery agent).
	lf bool
	// prepends are the header fields the server may add above the message
	// it received, and nothing else: the stored message must be these
	// fields followed by exactly the bytes portwise sent.
	prepends []string
	// authLine matches one line of the server's log for each AUTH attempt
	// (a protocol log where the server has one).
	authLine *regexp.Regexp
	// cmdLog: the server's log holds the MAIL FROM and RCPT TO commands as
	// received, with their parameters (ENVID, NOTIFY, SMTPUTF8, REQUIRETLS).
	cmdLog bool
	// findings are the probe findings that are true of this server, per
	// mode; any other finding is a false one.
	findings map[tlsmode.Mode][]string
	// badPassword4xx: the server answers a wrong password with a 4xx
	// (maddy: 454 4.7.0 auth: invalid credentials) rather than 535, which
	// internal/diag knows to be a rejected credential.
	badPassword4xx bool
	// notes are the server's quirks, decided: tolerated or documented.
	notes []string
}

var matrixServers = []matrixServer{
	{
		name: "postfix", title: "Postfix + Dovecot SASL",
		store: "maildir", lf: true,
		// virtual(8) adds Return-Path, Delivered-To and X-Original-To;
		// smtpd adds Received.
		prepends: []string{"Return-Path", "Delivered-To", "X-Original-To", "Received"},
		authLine: regexp.MustCompile(`SASL \w+ authentication failed|sasl_method=`),
		notes: []string{
			"DSN checked through the success notice Postfix delivers to the sender (Original-Envelope-Id); SMTPUTF8 through Delivered-To.",
		},
	},
	{
		name: "exim", title: "Exim",
		store: "maildir", lf: true,
		prepends: []string{"Received"},
		authLine: regexp.MustCompile(`auth attempt: `), // logged by an acl_smtp_auth of .ci/servers/exim.sh
		cmdLog:   true,
		notes: []string{
			"Advertises PIPECONNECT: portwise's later sessions pipeline early (TestInteropEximPipeConnect). AUTH commands and the envelope are logged by ACLs (`logwrite`); pipelining seen as `L.` on the `<=` line.",
		},
	},
	{
		name: "haraka", title: "Haraka",
		store: "files",
		// Haraka adds its Received and, after AUTH, Authentication-Results.
		prepends: []string{"Received", "Authentication-Results"},
		authLine: regexp.MustCompile(`\] C: AUTH `),
		cmdLog:   true,
		notes: []string{
			"auth/flat_file offers AUTH in clear to private addresses (127.0.0.1 included): the matrix runs a 15-line plugin that offers it only over TLS, as a provider would.",
		},
	},
	{
		name: "smtp-server", title: "Nodemailer smtp-server",
		store:    "files",
		authLine: regexp.MustCompile(` C: AUTH `),
		cmdLog:   true,
		findings: map[tlsmode.Mode][]string{tlsmode.StartTLS: {"auth-before-tls"}},
		notes: []string{
			"Quirk, documented: advertises AUTH before STARTTLS (it refuses AUTH until TLS, allowInsecureAuth: false); the probe's auth-before-tls finding on the STARTTLS port is true.",
			"DSN and REQUIRETLS need hideDSN/hideREQUIRETLS: false.",
		},
	},
	{
		name: "mailpit", title: "Mailpit",
		store: "mailpit",
		// Mailpit adds Return-Path and Received when it stores a message.
		prepends: []string{"Return-Path", "Received"},
		authLine: regexp.MustCompile(`\[smtpd\] received \([^)]*\) AUTH `),
		cmdLog:   true,
		findings: map[tlsmode.Mode][]string{tlsmode.StartTLS: {"auth-before-tls"}},
		notes: []string{
			"Quirk, documented: advertises AUTH before STARTTLS (refused until TLS with --smtp-require-starttls); the probe's auth-before-tls finding on the STARTTLS port is true.",
			"One SMTP port per process: two Mailpits, one per TLS mode, each with its own store and API.",
		},
	},
	{
		name: "chasquid", title: "chasquid",
		store: "maildir", lf: true,
		prepends: []string{"Received"},
		authLine: regexp.MustCompile(`-> AUTH `),
		cmdLog:   true,
		findings: map[tlsmode.Mode][]string{tlsmode.StartTLS: {"tls-legacy-accepted"}, tlsmode.Implicit: {"tls-legacy-accepted"}},
		notes: []string{
			"Offers only AUTH PLAIN, so LoginAuth is not applicable.",
			"Quirk, documented: accepts TLS 1.0 and 1.1 (built with Go 1.19, whose server default that was; 1.11 has no setting for it): the probe's tls-legacy-accepted warning is true, confirmed with openssl.",
		},
	},
	{
		name: "aiosmtpd", title: "aiosmtpd",
		store:    "files",
		authLine: regexp.MustCompile(`>> b'AUTH `),
		cmdLog:   true,
		notes: []string{
			"Quirk, to tolerate: LOGIN prompts are `User Name\\x00` and `Password\\x00` (NUL-padded, like older Exchange); main's LoginAuth learns to answer them.",
			"Quirk, worked around: auth_require_tls only counts STARTTLS as TLS, so the implicit-TLS listener runs with auth_require_tls=False (every byte there is inside TLS).",
		},
	},
	{
		name: "maddy", title: "maddy",
		store: "maildir",
		// imapsql delivery adds Delivered-To and Return-Path, the submission
		// endpoint its Received.
		prepends:       []string{"Delivered-To", "Return-Path", "Received"},
		authLine:       regexp.MustCompile(`^submission: AUTH `),
		cmdLog:         true,
		badPassword4xx: true,
		notes: []string{
			"Quirk, known: a wrong password gets `454 4.7.0 auth: invalid credentials`, a temporary code, not 535; portwise knows the reply (internal/diag/testdata/providers/maddy.txt) and makes it ErrAuthFailed, not temporary, with one AUTH.",
			"Offers only AUTH PLAIN: `sasl_login yes` accepts LOGIN but 0.8.1 does not advertise it, so LoginAuth is not applicable.",
		},
	},
}

// live is a matrixServer with what its start script wrote.
type live struct {
	*matrixServer
	version            string
	starttls, implicit tlsmode.Candidate
	user, pass         string
	rcpt, utf8rcpt     string
	storePath          string
	logs               []string
	ca                 *x509.CertPool
	caFile             string
	files              *fileStore
	mu                 sync.Mutex
	mechs              []string // AUTH mechanisms after TLS
	exts               map[string]bool
	bannerByMode       map[tlsmode.Mode]string
	observed           []string // quirks seen during the run
}

func envName(name, field string) string {
	return "PORTWISE_INTEROP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + field
}

// liveServer returns s as started, or skips the test when its start
// script's variables are absent (CI sets them all).
func liveServer(t *testing.T, s *matrixServer) *live {
	t.Helper()
	get := func(f string) string { return os.Getenv(envName(s.name, f)) }
	if get("STARTTLS") == "" {
		if os.Getenv("PORTWISE_INTEROP_REQUIRE") == "1" {
			t.Fatalf("%s is not running, and PORTWISE_INTEROP_REQUIRE=1 (CI) forbids skipping: did .ci/interop.sh start it?", s.name)
		}
		t.Skipf("%s is not running: `sudo bash .ci/interop.sh start %s && . .ci/interop.env` first (CONTRIBUTING.md)", s.name, s.name)
	}
	caFile := os.Getenv("PORTWISE_INTEROP_CA")
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("PORTWISE_INTEROP_CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in PORTWISE_INTEROP_CA")
	}
	l := &live{
		matrixServer: s,
		version:      get("VERSION"),
		starttls:     tlsmode.Candidate{Port: port(t, get("STARTTLS")), Mode: tlsmode.StartTLS},
		implicit:     tlsmode.Candidate{Port: port(t, get("IMPLICIT")), Mode: tlsmode.Implicit},
		user:         get("USER"),
		pass:         get("PASS"),
		rcpt:         get("RCPT"),
		utf8rcpt:     get("UTF8RCPT"),
		storePath:    get("STORE"),
		logs:         strings.Split(get("LOG"), ","),
		ca:           pool,
		caFile:       caFile,
		bannerByMode: map[tlsmode.Mode]string{},
	}
	if s.store != "mailpit" {
		l.files = &fileStore{root: l.storePath, files: s.store == "files", ids: map[string]string{}}
	}
	return l
}

func (l *live) candidates() []tlsmode.Candidate { return []tlsmode.Candidate{l.starttls, l.implicit} }

func (l *live) observe(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observed = append(l.observed, fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------- logs

// logMark is where the server's logs ended at some moment.
type logMark []int64

func (l *live) mark() logMark {
	m := make(logMark, len(l.logs))
	for i, p := range l.logs {
		if fi, err := os.Stat(p); err == nil {
			m[i] = fi.Size()
		}
	}
	return m
}

// since returns what the server logged after m.
func (l *live) since(t *testing.T, m logMark) string {
	t.Helper()
	var b strings.Builder
	for i, p := range l.logs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatalf("%s log: %v", l.name, err)
		}
		f.Seek(m[i], io.SeekStart)
		io.Copy(&b, f)
		f.Close()
	}
	return b.String()
}

// authLines counts the AUTH attempts logged after m, waiting up to 5 s
// for the first (some servers log asynchronously) and then 500 ms more
// for any late one.
func (l *live) authLines(t *testing.T, m logMark) (int, []string) {
	t.Helper()
	count := func() []string {
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(l.since(t, m)))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if l.authLine.MatchString(sc.Text()) {
				lines = append(lines, sc.Text())
			}
		}
		return lines
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(count()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	lines := count()
	return len(lines), lines
}

// ---------------------------------------------------------------- stores

// stored is one message as the server stored it, with the envelope the
// server recorded beside it ("files" stores), if any.
type stored struct {
	where    string
	data     []byte
	envelope string
}

// fileStore reads a directory of one-message files, remembering each
// file's Message-ID so a poll reads only new files.
type fileStore struct {
	root  string
	files bool // only *.eml, envelopes in *.json
	mu    sync.Mutex
	ids   map[string]string // path → Message-ID ("" if none)
}

var messageIDHeader = regexp.MustCompile(`(?im)^Message-ID:[ \t]*(<[^>\r\n]*>)`)

// headerOf returns the header section of a message (up to the first empty
// line), at most 256 KiB of it.
func headerOf(b []byte) []byte {
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(b, sep); i >= 0 {
			b = b[:i]
			break
		}
	}
	return b[:min(len(b), 256<<10)]
}

func (st *fileStore) scan() (map[string][]string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	err := filepath.WalkDir(st.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			if d.Name() == "tmp" {
				return filepath.SkipDir // maildir tmp/ and our scripts' tmp/: not yet delivered
			}
			return nil
		}
		if st.files && !strings.HasSuffix(p, ".eml") {
			return nil
		}
		if _, ok := st.ids[p]; ok {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil // moved meanwhile (maildir new/ → cur/)
		}
		head := make([]byte, 256<<10)
		n, _ := io.ReadFull(f, head)
		f.Close()
		id := ""
		if m := messageIDHeader.FindSubmatch(headerOf(head[:n])); m != nil {
			id = string(m[1])
		}
		st.ids[p] = id
		return nil
	})
	byID := map[string][]string{}
	for p, id := range st.ids {
		byID[id] = append(byID[id], p)
	}
	return byID, err
}

// all returns every stored copy of each message id in ids.
func (l *live) all(t *testing.T, ids map[string]bool) map[string][]stored {
	t.Helper()
	out := map[string][]stored{}
	if l.store == "mailpit" {
		for _, api := range strings.Split(l.storePath, ",") {
			for _, m := range mailpitList(t, api) {
				id := "<" + m.MessageID + ">"
				if !ids[id] {
					continue
				}
				out[id] = append(out[id], stored{where: api + "/api/v1/message/" + m.ID + "/raw", envelope: m.envelope})
			}
		}
		return out
	}
	byID, err := l.files.scan()
	if err != nil {
		t.Fatalf("reading %s: %v", l.files.root, err)
	}
	for id := range ids {
		for _, p := range byID[id] {
			out[id] = append(out[id], stored{where: p})
		}
	}
	return out
}

// load reads a stored message and, for "files" stores, its envelope.
func (l *live) load(t *testing.T, s *stored) {
	t.Helper()
	if l.store == "mailpit" {
		s.data = httpGet(t, s.where)
		return
	}
	b, err := os.ReadFile(s.where)
	if err != nil {
		t.Fatal(err)
	}
	s.data = b
	if l.store == "files" {
		env, _ := os.ReadFile(strings.TrimSuffix(s.where, ".eml") + ".json")
		s.envelope = string(env)
	}
}

// wait polls the store until every id in ids has at least one stored
// copy, and returns them all (loaded when load is set).
func (l *live) wait(t *testing.T, ids []string, load bool) map[string][]stored {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := l.all(t, want)
		missing := 0
		for id := range want {
			if len(got[id]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			if load {
				for id := range got {
					for i := range got[id] {
						l.load(t, &got[id][i])
					}
				}
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages not in %s's store (%s) after 60s", missing, len(want), l.name, l.storePath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type mailpitMessage struct {
	ID        string
	MessageID string
	envelope  string
}

func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", u, resp.Status, err)
	}
	return b
}

// mailpitList lists every message Mailpit holds, with its envelope as the
// API shows it (From, To, Username) as JSON.
func mailpitList(t *testing.T, api string) []mailpitMessage {
	t.Helper()
	var out []mailpitMessage
	for start := 0; ; start += 500 {
		var page struct {
			Total    int `json:"total"`
			Messages []json.RawMessage
		}
		b := httpGet(t, api+"/api/v1/messages?limit=500&start="+url.QueryEscape(fmt.Sprint(start)))
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("mailpit %s: %v", api, err)
		}
		for _, raw := range page.Messages {
			var m mailpitMessage
			json.Unmarshal(raw, &m)
			m.envelope = string(raw)
			out = append(out, m)
		}
		if len(page.Messages) == 0 || start+len(page.Messages) >= page.Total {
			return out
		}
	}
}
