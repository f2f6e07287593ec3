package submit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// chunkingCaps are the EHLO lines of a server with CHUNKING and
// PIPELINING, as Postfix, Exim and Gmail advertise them.
const chunkingCaps = "250-PIPELINING\r\n250-CHUNKING\r\n"

func TestSendBDATGoesInOneFlightWithTheEnvelope(t *testing.T) {
	srv := submittest.NewServer(t)
	// The server reads the envelope and the whole message before it
	// answers anything: a client waiting for any reply on the way would
	// stall until the deadline.
	body := "Subject: one flight\n\n.leading dot, not stuffed\r\nbare CR\rbare LF\nno final newline"
	want := "Subject: one flight\r\n\r\n.leading dot, not stuffed\r\nbare CR\r\nbare LF\r\nno final newline\r\n"
	c, sc := dialScript(t, srv, implicitScript(chunkingCaps,
		script.Expect("MAIL FROM:<a@example.com>"),
		script.Expect("RCPT TO:<b@example.com>"),
		script.Expect("RCPT TO:<nobody@example.com>"),
		script.Expect("RCPT TO:<c@example.com>"),
		script.ExpectBDAT(),
		script.Send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n250 2.0.0 Ok: queued as 4F2A1\r\n"),
	))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com", "nobody@example.com", "c@example.com"}, strings.NewReader(body), nil)
	var se *submit.SendError
	if !errors.As(err, &se) || se.Accepted != 2 || len(se.Rejected) != 1 || se.Rejected[0].Addr != "nobody@example.com" {
		t.Fatalf("err = %v, want one refused recipient of three", err)
	}
	if res.QueueID != "4F2A1" || res.Size != int64(len(want)) {
		t.Errorf("result = %+v, want queue id 4F2A1 and size %d", res, len(want))
	}
	rec := scriptRecord(t, srv, sc, c)
	if len(rec.Messages) != 1 || string(rec.Messages[0]) != want {
		t.Fatalf("the server got %q, want %q", rec.Messages, want)
	}
	for _, l := range rec.Lines {
		if !l.Data && strings.HasPrefix(l.Text, "BDAT ") && l.Text != "BDAT "+strconv.Itoa(len(want))+" LAST" {
			t.Errorf("chunk command %q, want one BDAT %d LAST", l.Text, len(want))
		}
	}
}

func TestSendBDATWithoutPipeliningWaitsForEachReply(t *testing.T) {
	srv := submittest.NewServer(t)
	c, sc := dialScript(t, srv, implicitScript("250-CHUNKING\r\n",
		script.ExpectPrefix("MAIL FROM:<a@example.com>"),
		script.Send("250 2.1.0 ok\r\n"),
		script.Expect("RCPT TO:<b@example.com>"),
		script.Send("250 2.1.5 ok\r\n"),
		script.ExpectBDAT(),
		script.Send("250 2.0.0 Ok: queued as 77\r\n"),
		script.Expect("MAIL FROM:<a@example.com>"),
		script.Send("250 2.1.0 ok\r\n"),
		script.Expect("RCPT TO:<b@example.com>"),
		script.Send("250 2.1.5 ok\r\n"),
		script.ExpectBDAT(),
		script.Send("250 2.0.0 Ok: queued as 78\r\n"),
	))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i, id := range []string{"77", "78"} {
		res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: "+strconv.Itoa(i)+"\r\n"), nil)
		if err != nil || res.QueueID != id {
			t.Fatalf("send %d: %v, queue id %q", i, err, res.QueueID)
		}
	}
	if rec := scriptRecord(t, srv, sc, c); rec.Err != nil || len(rec.Messages) != 2 {
		t.Fatalf("script: %v, %d messages", rec.Err, len(rec.Messages))
	}
}

func TestSendNoChunkingKeepsDATA(t *testing.T) {
	srv := submittest.NewServer(t)
	c, sc := dialScript(t, srv, implicitScript(chunkingCaps,
		script.ExpectPrefix("MAIL FROM:"),
		script.ExpectPrefix("RCPT TO:"),
		script.Expect("DATA"),
		script.Send("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
		script.ExpectData(),
		script.Send("250 2.0.0 Ok: queued as 9\r\n"),
	))
	defer c.Close()
	if _, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(".x\r\n"), &submit.SendOptions{NoChunking: true}); err != nil {
		t.Fatal(err)
	}
	if rec := scriptRecord(t, srv, sc, c); rec.Err != nil || string(rec.Messages[0]) != ".x\r\n" {
		t.Fatalf("script: %v, message %q", rec.Err, rec.Messages)
	}
}

// unsized hides a reader's type, so that the client cannot know its size.
type unsized struct{ io.Reader }

func TestSendBDATStreamsAMessageOfUnknownSizeInChunks(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{})
	var transcript bytes.Buffer
	d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, addr, tlsmode.Implicit))
	d.Transcript = &transcript
	c, err := d.Dial(context.Background(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	// 3.5 MiB of bare-LF lines: each line grows by one byte on the wire.
	line := strings.Repeat("x", 99) + "\n"
	src := strings.Repeat(line, 3_670_016/len(line))
	want := strings.ReplaceAll(src, "\n", "\r\n")
	res, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, unsized{strings.NewReader(src)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(want)) {
		t.Errorf("Size = %d, want %d", res.Size, len(want))
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].SHA256 != sha256.Sum256([]byte(want)) {
		t.Fatal("the server did not get the message intact")
	}
	var chunks []string
	for _, l := range strings.Split(transcript.String(), "\n") {
		if i := strings.Index(l, "BDAT "); i >= 0 {
			chunks = append(chunks, strings.TrimSpace(l[i:]))
		}
	}
	wantChunks := []string{"BDAT 1048576", "BDAT 1048576", "BDAT 1048576", "BDAT " + strconv.Itoa(len(want)-3*1048576) + " LAST"}
	if strings.Join(chunks, "|") != strings.Join(wantChunks, "|") {
		t.Errorf("chunks %q, want %q", chunks, wantChunks)
	}
}

// TestSendRefusalsReadTheSameWithBDATAsWithDATA sends each refusal once
// with DATA and once with BDAT to the same kind of server: the error a
// program sees, its type and its text, must not depend on the command that
// carried the message.
func TestSendRefusalsReadTheSameWithBDATAsWithDATA(t *testing.T) {
	tests := []struct {
		name  string
		opts  submittest.Options
		to    []string
		msg   func() io.Reader
		sends int // the last one is compared
		check func(t *testing.T, err error)
	}{
		{
			name: "one recipient refused",
			opts: submittest.Options{RejectRecipients: map[string]string{"nobody@example.com": "550 5.1.1 no such user"}},
			to:   []string{"b@example.com", "nobody@example.com"},
			check: func(t *testing.T, err error) {
				var se *submit.SendError
				if !errors.As(err, &se) || se.Accepted != 1 {
					t.Errorf("err = %v, want a SendError with one accepted", err)
				}
			},
		},
		{
			name: "every recipient refused",
			opts: submittest.Options{RejectRecipients: map[string]string{"b@example.com": "450 4.2.1 mailbox busy", "c@example.com": "550 5.1.1 no such user"}},
			to:   []string{"b@example.com", "c@example.com"},
			check: func(t *testing.T, err error) {
				var se *submit.SendError
				if !errors.As(err, &se) || se.Accepted != 0 || se.Temporary() {
					t.Errorf("err = %v, want a permanent SendError with none accepted", err)
				}
			},
		},
		{
			name: "sender refused",
			opts: submittest.Options{FailEvery: 1, FailReply: "553 5.7.1 sender not allowed"},
			check: func(t *testing.T, err error) {
				var se *submit.StepError
				if !errors.As(err, &se) || se.Step != "MAIL FROM" || se.Reply == nil || se.Reply.Code != 553 {
					t.Errorf("err = %v, want MAIL FROM's 553", err)
				}
			},
		},
		{
			name:  "session cap: 421 to MAIL FROM",
			opts:  submittest.Options{MaxMessagesPerConn: 1},
			sends: 2,
			check: func(t *testing.T, err error) {
				var se *submit.StepError
				if !errors.As(err, &se) || se.Step != "MAIL FROM" || !submit.IsTemporary(err) {
					t.Errorf("err = %v, want MAIL FROM's temporary 421", err)
				}
			},
		},
		{
			name: "message too large",
			opts: submittest.Options{MaxMessageBytes: 1000},
			msg: func() io.Reader {
				return unsized{strings.NewReader(strings.Repeat("y", 900) + "\r\n" + strings.Repeat("z", 900) + "\r\n")}
			},
			check: func(t *testing.T, err error) {
				var se *submit.StepError
				if !errors.As(err, &se) || se.Step != "message" || se.Reply == nil || se.Reply.Code != 552 || errors.Is(err, submit.ErrOutcomeUnknown) {
					t.Errorf("err = %v, want the message's 552", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var texts []string
			for _, noChunking := range []bool{true, false} {
				srv := submittest.NewServer(t)
				addr := srv.ListenWith(tlsmode.Implicit, tt.opts)
				var transcript bytes.Buffer
				d := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, addr, tlsmode.Implicit))
				d.Transcript = &transcript
				c, err := d.Dial(context.Background(), "localhost")
				if err != nil {
					t.Fatal(err)
				}
				to := tt.to
				if to == nil {
					to = []string{"b@example.com"}
				}
				for range max(tt.sends, 1) {
					msg := io.Reader(strings.NewReader(testMsg))
					if tt.msg != nil {
						msg = tt.msg()
					}
					_, err = c.SendWith(context.Background(), "a@example.com", to, msg, &submit.SendOptions{NoChunking: noChunking})
				}
				c.Close()
				tt.check(t, err)
				if got := strings.Contains(transcript.String(), "BDAT"); got == noChunking {
					t.Errorf("NoChunking %v: BDAT in the transcript: %v", noChunking, got)
				}
				if err != nil {
					texts = append(texts, strings.ReplaceAll(err.Error(), strconv.Itoa(addr.Port), "PORT"))
				}
			}
			if len(texts) == 2 {
				// go-smtp words its own 552 differently for DATA and BDAT;
				// the server's words are not ours to compare.
				texts[0] = strings.Replace(texts[0], "Maximum message size", "Max message size", 1)
			}
			if len(texts) == 2 && texts[0] != texts[1] {
				t.Errorf("with DATA:\n%s\nwith BDAT:\n%s", texts[0], texts[1])
			}
		})
	}
}

func TestSendBDATBrokenAfterTheLastChunkIsOutcomeUnknown(t *testing.T) {
	srv := submittest.NewServer(t)
	c, sc := dialScript(t, srv, implicitScript(chunkingCaps,
		script.ExpectPrefix("MAIL FROM:"),
		script.ExpectPrefix("RCPT TO:"),
		script.ExpectBDAT(),
		script.Send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n"),
		script.Close(),
	))
	defer c.Close()
	_, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
	var se *submit.StepError
	if !errors.Is(err, submit.ErrOutcomeUnknown) || !errors.As(err, &se) || se.Step != "message" {
		t.Fatalf("err = %v, want ErrOutcomeUnknown at the message", err)
	}
	if rec := scriptRecord(t, srv, sc, c); len(rec.Messages) != 1 {
		t.Fatalf("the server got %d messages, want the one whose outcome the client cannot know", len(rec.Messages))
	}
}

func TestSendBDATAbortsALongLineWithRSETAndKeepsTheConnection(t *testing.T) {
	// A script, not go-smtp: go-smtp v0.25.1's server races with itself
	// when RSET aborts a BDAT transaction after a chunk.
	srv := submittest.NewServer(t)
	c, sc := dialScript(t, srv, implicitScript(chunkingCaps,
		script.ExpectPrefix("MAIL FROM:"),
		script.ExpectPrefix("RCPT TO:"),
		script.ExpectBDAT(), // the first chunk, whole
		script.Send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 chunk ok\r\n"),
		script.Expect("RSET"),
		script.Send("250 2.0.0 reset\r\n"),
		script.ExpectPrefix("MAIL FROM:"),
		script.ExpectPrefix("RCPT TO:"),
		script.ExpectBDAT(),
		script.Send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 Ok: queued as 5\r\n"),
	))
	defer c.Close()
	// More than a chunk of good lines, then one too long: the first chunk
	// is already on the server when the long line is found.
	good := strings.Repeat(strings.Repeat("g", 78)+"\r\n", (1<<20)/80+10)
	msg := unsized{strings.NewReader(good + strings.Repeat("L", 1200) + "\r\n")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com"}, msg, nil)
	if !errors.Is(err, submit.ErrLineTooLong) || !strings.Contains(err.Error(), "discard") {
		t.Fatalf("err = %v, want ErrLineTooLong, the message discarded", err)
	}
	res, err := c.SendWith(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg), nil)
	if err != nil || res.QueueID != "5" {
		t.Fatalf("the connection did not survive the aborted message: %v", err)
	}
	rec := scriptRecord(t, srv, sc, c)
	if rec.Err != nil || len(rec.Messages) != 1 || string(rec.Messages[0]) != testMsg {
		t.Fatalf("script: %v; messages %q, want the second alone", rec.Err, rec.Messages)
	}
}

func TestSendBDATReaderErrorAbortsTheMessage(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.Listen(tlsmode.Implicit)
	c := dialListener(t, srv, addr, tlsmode.Implicit)
	boom := errors.New("disk on fire")
	msg := io.MultiReader(strings.NewReader("Subject: half\r\n\r\n"), &failingReader{err: boom})
	_, err := c.SendWith(context.Background(), "a@example.com", []string{"b@example.com"}, msg, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("the server kept %d messages", n)
	}
	if err := c.Send(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatalf("the next message: %v", err)
	}
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

// TestMailerFindsTheIdleClosedConnectionBeforeSendingTheMessage checks that
// a message that cannot be rewound is not lost to a connection the server
// closed while it sat idle: the client sees the 421 before it sends
// anything, and the Mailer sends on a new connection.
func TestMailerFindsTheIdleClosedConnectionBeforeSendingTheMessage(t *testing.T) {
	srv := submittest.NewServer(t)
	// Long enough that the first message, under the race detector on a
	// busy machine, reaches the server before it gives up on the session.
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{IdleTimeout: 500 * time.Millisecond})
	m, cd := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{IdleCheck: -1})
	ctx := context.Background()
	for i := range 2 {
		if i == 1 {
			eventually(t, "closed by the server", func() bool { return connsOn(srv, srv.Addr(addr))[0].Closed })
		}
		// An io.MultiReader cannot seek: a message sent on the dead
		// connection could not be sent again.
		msg := io.MultiReader(strings.NewReader(testMsg))
		if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, msg); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	if _, _, dialed := cd.counts(); dialed != 2 {
		t.Errorf("%d connections dialled, want 2", dialed)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

func TestMailerRewindsAMessageRefusedWith421BeforeItCouldBeDelivered(t *testing.T) {
	// BDAT sends the message with the envelope: when MAIL FROM gets 421,
	// the message was read already, and only a rewound one can go again.
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{MaxMessagesPerConn: 1})
	m, cd := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{MaxMessages: -1})
	ctx := context.Background()
	for i := range 2 {
		r := strings.NewReader("Subject: " + strconv.Itoa(i) + "\r\n\r\nbody\r\n")
		r.Seek(9, io.SeekStart) // a reader not at its start is rewound to where it was
		if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, r); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || string(msgs[1].Data) != "1\r\n\r\nbody\r\n" {
		t.Fatalf("%d messages, want the second intact from offset 9", len(msgs))
	}
	if _, _, dialed := cd.counts(); dialed != 2 {
		t.Errorf("%d connections dialled, want 2", dialed)
	}
}

// scriptRecord closes c and returns what the script on sc saw on its one
// connection.
func scriptRecord(t *testing.T, srv *submittest.Server, sc tlsmode.Candidate, c *submit.Client) script.Record {
	t.Helper()
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recs, err := srv.WaitScripts(ctx, sc)
	if err != nil || len(recs) != 1 {
		t.Fatalf("WaitScripts: %d records, %v", len(recs), err)
	}
	return recs[0]
}
