package submit_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/submit/submittest/script"
	"github.com/portwise/portwise/tlsmode"
)

// messageTrace records the Dial, connection and message hooks.
type messageTrace struct {
	mu       sync.Mutex
	dials    []submit.DialInfo
	winners  []submit.Attempt
	conns    []submit.ConnInfo
	starts   []submit.MessageInfo
	dones    []submit.MessageInfo
	retries  []submit.Retry
	sequence []string
}

func (m *messageTrace) note(s string) {
	m.sequence = append(m.sequence, s)
}

func (m *messageTrace) trace() *submit.Trace {
	lock := func(f func()) { m.mu.Lock(); defer m.mu.Unlock(); f() }
	return &submit.Trace{
		DialStart: func(d submit.DialInfo) { lock(func() { m.note("dial-start") }) },
		DialDone: func(d submit.DialInfo) {
			lock(func() { m.dials = append(m.dials, d); m.note("dial-done") })
		},
		WinnerChosen: func(a submit.Attempt) { lock(func() { m.winners = append(m.winners, a) }) },
		GotConn:      func(c submit.ConnInfo) { lock(func() { m.conns = append(m.conns, c); m.note("got-conn") }) },
		MessageStart: func(i submit.MessageInfo) {
			lock(func() { m.starts = append(m.starts, i); m.note("message-start") })
		},
		MessageDone: func(i submit.MessageInfo) {
			lock(func() { m.dones = append(m.dones, i); m.note("message-done") })
		},
		Retry: func(r submit.Retry) { lock(func() { m.retries = append(m.retries, r); m.note("retry") }) },
	}
}

// TestTraceFollowsEachMessageToItsConnection: a Mailer's messages carry
// the ID of the connection they went on, which is the ID of the Attempt
// that won its Dial; the second message reuses it.
func TestTraceFollowsEachMessageToItsConnection(t *testing.T) {
	srv := submittest.NewServer(t, submittest.Options{RejectRecipients: map[string]string{"nobody@example.com": "550 5.1.1 no such user"}})
	m, _ := mailerFor(t, srv, srv.Implicit, tlsmode.Implicit, nil)
	mt := &messageTrace{}
	ctx := submit.WithTrace(context.Background(), mt.trace())
	if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	_, err := m.SendWith(ctx, "a@example.com", []string{"b@example.com", "nobody@example.com"}, strings.NewReader(testMsg), nil)
	if err == nil {
		t.Fatal("want the SendError of a refused recipient")
	}
	if want := "dial-start dial-done got-conn message-start message-done got-conn message-start message-done"; strings.Join(mt.sequence, " ") != want {
		t.Fatalf("hooks ran %q;\nwant %q", mt.sequence, want)
	}
	id := mt.winners[0].ID
	if id == 0 || mt.dials[0].Conn.ID != id || mt.dials[0].Err != nil || mt.dials[0].Conn.Candidate.Port != srv.Implicit.Port {
		t.Errorf("DialDone %+v, winner %d: the Dial's connection is not the winner's", mt.dials[0], id)
	}
	if c := mt.conns; c[0].ID != id || c[0].Reused || c[1].ID != id || !c[1].Reused || c[1].Messages != 1 {
		t.Errorf("GotConn %+v: want the new connection, then it again, reused after one message", c)
	}
	first, second := mt.dones[0], mt.dones[1]
	if first.Conn.ID != id || first.Outcome != submit.OutcomeAccepted || first.QueueID == "" || first.Accepted != 1 ||
		first.Step != "" || first.Err != nil || first.Try != 1 || first.Size != int64(len(testMsg)) || !first.Chunking {
		t.Errorf("first MessageDone %+v", first)
	}
	if second.Conn.Messages != 1 || second.Outcome != submit.OutcomeAccepted || second.Accepted != 1 || second.Rejected != 1 ||
		second.Step != "RCPT TO" || second.Err == nil || second.Recipients != 2 {
		t.Errorf("second MessageDone %+v", second)
	}
	if s := mt.starts[0]; s.Size != int64(len(testMsg)) || s.Recipients != 1 || s.Outcome != submit.OutcomeNotSent {
		t.Errorf("MessageStart %+v", s)
	}
}

// TestTraceShowsARedialAndTheMessageOnItsNewConnection: when the server
// closed the pooled connection, Retry says so (Redial) and the message's
// next MessageStart is on a new connection.
func TestTraceShowsARedialAndTheMessageOnItsNewConnection(t *testing.T) {
	srv := submittest.NewServer(t)
	addr := srv.ListenWith(tlsmode.Implicit, submittest.Options{MaxMessagesPerConn: 1})
	m, _ := mailerFor(t, srv, addr, tlsmode.Implicit, &submit.Mailer{MaxMessages: -1})
	mt := &messageTrace{}
	ctx := submit.WithTrace(context.Background(), mt.trace())
	for range 2 {
		if err := m.Send(ctx, "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
	}
	if len(mt.retries) != 1 || !mt.retries[0].Redial || mt.retries[0].Delay != 0 || mt.retries[0].Try != 1 {
		t.Fatalf("retries %+v; want one redial", mt.retries)
	}
	if len(mt.dones) != 3 || mt.dones[1].Outcome != submit.OutcomeNotSent || mt.dones[1].Step != "MAIL FROM" ||
		mt.dones[2].Conn.ID == mt.dones[1].Conn.ID || mt.dones[2].Outcome != submit.OutcomeAccepted {
		t.Errorf("messages %+v; want the 421 on the first connection, then the message accepted on a new one", mt.dones)
	}
	if st := m.Stats(); st.Retried != 1 || st.Sent != 2 {
		t.Errorf("stats %+v: the redial is not counted", st)
	}
}

// TestTraceOfAFailedDial: DialDone carries the DialError, and no message
// hook runs.
func TestTraceOfAFailedDial(t *testing.T) {
	srv := submittest.NewServer(t)
	sc := srv.ListenScript(submittest.Options{}, script.StartTLS(), script.Send("554 5.7.1 go away\r\n"))
	m := &submit.Mailer{Dialer: srv.Dialer(nil, sc), Host: "127.0.0.1", MaxTries: -1}
	defer m.Close()
	mt := &messageTrace{}
	err := m.Send(submit.WithTrace(context.Background(), mt.trace()), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
	if err == nil || len(mt.dials) != 1 || mt.dials[0].Err == nil || mt.dials[0].Conn.ID != 0 || len(mt.starts)+len(mt.conns) != 0 {
		t.Errorf("err %v; dials %+v, conns %+v, messages %+v", err, mt.dials, mt.conns, mt.starts)
	}
}

// TestMessageDoneSplitsTheEnvelopeFromTheContent: MessageInfo.Envelope
// ends when the message's content begins to go out, so a slow reply to the
// envelope shows in it and a slow reply to the content does not; when the
// envelope rides in the content's flight it is next to nothing, and when
// the content never went out it is the whole send.
func TestMessageDoneSplitsTheEnvelopeFromTheContent(t *testing.T) {
	const slow = 80 * time.Millisecond
	mail, rcpt := script.ExpectPrefix("MAIL FROM:"), script.ExpectPrefix("RCPT TO:")
	ok := script.Send("250 ok\r\n")
	tests := []struct {
		name     string
		caps     string
		steps    []script.Step
		envelope func(env, elapsed time.Duration) bool
		want     bool
	}{
		{"DATA, a slow reply to MAIL FROM", "", one(mail, script.Pause(slow), ok, rcpt, ok, script.Expect("DATA"),
			script.Send("354 go\r\n"), script.ExpectData(), script.Send("250 2.0.0 queued as A1\r\n")),
			func(env, elapsed time.Duration) bool { return env >= slow && env < elapsed }, true},
		{"DATA, a slow reply to the final dot", "", one(mail, ok, rcpt, ok, script.Expect("DATA"),
			script.Send("354 go\r\n"), script.ExpectData(), script.Pause(slow), script.Send("250 2.0.0 queued as A1\r\n")),
			func(env, elapsed time.Duration) bool { return env > 0 && elapsed-env >= slow }, true},
		{"BDAT in one flight with the envelope", chunkingCaps, one(mail, rcpt, script.ExpectBDAT(), script.Pause(slow),
			script.Send("250 ok\r\n250 ok\r\n250 2.0.0 queued as A1\r\n")),
			func(env, elapsed time.Duration) bool { return env < slow && elapsed-env >= slow }, true},
		{"every recipient refused", "", one(mail, ok, rcpt, script.Pause(slow), script.Send("550 5.1.1 no such user\r\n"),
			script.Expect("RSET"), ok),
			func(env, elapsed time.Duration) bool { return env == elapsed && env >= slow }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := submittest.NewServer(t)
			c, _ := dialScript(t, srv, implicitScript(tt.caps, tt.steps...))
			defer c.Close()
			mt := &messageTrace{}
			err := c.Send(submit.WithTrace(context.Background(), mt.trace()), "a@example.com", []string{"b@example.com"}, strings.NewReader(testMsg))
			if (err == nil) != tt.want || len(mt.dones) != 1 {
				t.Fatalf("err %v, %d MessageDone", err, len(mt.dones))
			}
			if d := mt.dones[0]; !tt.envelope(d.Envelope, d.Elapsed) {
				t.Errorf("Envelope %v of Elapsed %v (outcome %v)", d.Envelope, d.Elapsed, d.Outcome)
			}
		})
	}
}

// TestWithTraceComposesEveryHook: every hook of an inner and an outer
// Trace runs, the inner's first, whatever its type.
func TestWithTraceComposesEveryHook(t *testing.T) {
	var calls []string
	mk := func(name string) *submit.Trace {
		tr := &submit.Trace{}
		v := reflect.ValueOf(tr).Elem()
		for i := range v.NumField() {
			f := v.Field(i)
			field := v.Type().Field(i).Name
			f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value {
				calls = append(calls, name+"."+field)
				return nil
			}))
		}
		return tr
	}
	tr := submit.ContextTrace(submit.WithTrace(submit.WithTrace(context.Background(), mk("outer")), mk("inner")))
	v := reflect.ValueOf(tr).Elem()
	for i := range v.NumField() {
		calls = calls[:0]
		f := v.Field(i)
		f.Call([]reflect.Value{reflect.Zero(f.Type().In(0))})
		field := v.Type().Field(i).Name
		if want := []string{"inner." + field, "outer." + field}; !reflect.DeepEqual(calls, want) {
			t.Errorf("%s ran %v; want %v", field, calls, want)
		}
	}
}

// BenchmarkSendTrace measures a Client's send with no Trace, with a Trace
// whose message hooks are unset, and with them set: the hooks cost nothing
// when unset.
func BenchmarkSendTrace(b *testing.B) {
	srv := submittest.NewServer(b, submittest.Options{DiscardData: true})
	c, err := dialerFor(srv, submit.PlainAuth("", "user", "pass"), cand(srv, srv.Implicit, tlsmode.Implicit)).Dial(context.Background(), "localhost")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var n int
	for _, bc := range []struct {
		name  string
		trace *submit.Trace
	}{
		{"none", nil},
		{"unset", &submit.Trace{WinnerChosen: func(submit.Attempt) {}}},
		{"set", &submit.Trace{MessageStart: func(submit.MessageInfo) { n++ }, MessageDone: func(submit.MessageInfo) { n++ }}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := submit.WithTrace(context.Background(), bc.trace)
			r := strings.NewReader(testMsg)
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(testMsg)
				if err := c.Send(ctx, "a@example.com", []string{"b@example.com"}, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
