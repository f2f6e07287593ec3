package submit_test

import (
	"context"
	"crypto/tls"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	netsmtp "net/smtp"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

// The public contract of package submit, checked by the compiler: a
// renamed or re-typed name breaks this file before it breaks a user.
// Changing this file changes the contract; say so in CHANGELOG.md.
var (
	_ submit.ContextDialer = &net.Dialer{}

	_ = submit.Dialer{
		Candidates:         []tlsmode.Candidate(nil),
		TLSConfig:          (*tls.Config)(nil),
		Auth:               submit.Auth(nil),
		LocalName:          "",
		Timeout:            time.Duration(0),
		FallbackDelay:      time.Duration(0),
		NetDialer:          submit.ContextDialer(nil),
		Logger:             (*slog.Logger)(nil),
		Transcript:         io.Writer(nil),
		SessionCache:       tls.ClientSessionCache(nil),
		Discover:           func(context.Context, string) ([]submit.Server, error) { return nil, nil },
		Winners:            submit.WinnerStore(nil),
		WinnerTTL:          time.Duration(0),
		DisablePipeConnect: false,
	}
	_                                                                                = submit.Winner{Host: "", Candidate: tlsmode.Candidate{}, At: time.Time{}, PipeConnect: false, Extensions: []string(nil)}
	_ func(*submit.Dialer, context.Context, string) (*submit.Client, error)          = (*submit.Dialer).Dial
	_ func(*submit.Dialer, context.Context, []submit.Server) (*submit.Client, error) = (*submit.Dialer).DialServers

	_ func(*submit.Client) int                                                 = (*submit.Client).Port
	_ func(*submit.Client) tlsmode.Mode                                        = (*submit.Client).Mode
	_ func(*submit.Client) (tls.ConnectionState, bool)                         = (*submit.Client).ConnectionState
	_ func(*submit.Client) string                                              = (*submit.Client).Mechanism
	_ func(*submit.Client, context.Context, string, []string, io.Reader) error = (*submit.Client).Send
	_ func(*submit.Client) error                                               = (*submit.Client).Quit
	_ func(*submit.Client) error                                               = (*submit.Client).Close

	_ func(string, string, string) submit.Auth                   = submit.PlainAuth
	_ func(string, string) submit.Auth                           = submit.LoginAuth
	_ func(string, string) submit.Auth                           = submit.PasswordAuth
	_ func(string, oauth2.TokenSource) submit.Auth               = submit.XOAuth2
	_ func(string, oauth2.TokenSource) submit.Auth               = submit.OAuthBearer
	_ func(func() sasl.Client) submit.Auth                       = submit.SASL
	_ func(netsmtp.Auth) submit.Auth                             = submit.FromNetSMTP
	_ func(...submit.Auth) submit.Auth                           = submit.AnyAuth
	_ func(string, netsmtp.Auth, string, []string, []byte) error = submit.SendMail

	_                                 = submit.Attempt{ID: 0, Host: "", Candidate: tlsmode.Candidate{}, Addr: "", Err: error(nil), Elapsed: time.Duration(0)}
	_                                 = submit.DialError{Host: "", Attempts: []submit.Attempt(nil), Err: error(nil), Discovery: error(nil)}
	_ func(*submit.DialError) string  = (*submit.DialError).Error
	_ func(*submit.DialError) []error = (*submit.DialError).Unwrap
	_ func(*submit.DialError) string  = (*submit.DialError).Advice
	_ func(*submit.DialError) bool    = (*submit.DialError).Temporary
	_                                 = submit.StepError{Step: "", Host: "", Candidate: tlsmode.Candidate{}, Elapsed: 0, Reply: (*submit.Reply)(nil), Err: error(nil)}
	_ func(*submit.StepError) string  = (*submit.StepError).Advice
	_ func(*submit.StepError) bool    = (*submit.StepError).Temporary
	_ error                           = &submit.Reply{Code: 535, Enhanced: "5.7.8", Text: ""}
	_ func(*submit.Reply) bool        = (*submit.Reply).Temporary
	_ func(error) bool                = submit.IsTemporary
	_ func(error) submit.Kind         = submit.KindOf
	_ func(submit.Kind) string        = submit.Kind.String
	_                                 = []submit.Kind{submit.KindNone, submit.KindOther, submit.KindCanceled, submit.KindDeadline,
		submit.KindUnreachable, submit.KindConnection, submit.KindInsecure, submit.KindCertificate, submit.KindConfig,
		submit.KindCredential, submit.KindProtocol, submit.KindOutcomeUnknown, submit.KindRefused, submit.KindAuthRequired,
		submit.KindSender, submit.KindRecipientUnknown, submit.KindMailboxFull, submit.KindTooManyRecipients,
		submit.KindGreylisted, submit.KindContent, submit.KindQuota, submit.KindRateLimited, submit.KindAccount}

	_ = &submit.Mailer{Dialer: (*submit.Dialer)(nil), Host: "", MaxConns: 0, MaxIdle: 0, MaxMessages: 0,
		IdleTimeout: time.Duration(0), IdleCheck: time.Duration(0)}
	_ func(*submit.Mailer, context.Context, string, []string, io.Reader) error = (*submit.Mailer).Send
	_ func(*submit.Mailer) error                                               = (*submit.Mailer).Close

	_ func(*submit.Mailer) submit.MailerStats = (*submit.Mailer).Stats
	_                                         = submit.MailerStats{Sent: 0, Failed: 0, Unknown: 0, Retried: 0}

	_ = submit.SendResult{Outcome: submit.OutcomeNotSent, Size: 0, Accepted: []string(nil), Rejected: []submit.RecipientError(nil),
		QueueID: "", Reply: "", Tries: 0}
	_ = []submit.Outcome{submit.OutcomeNotSent, submit.OutcomeAccepted, submit.OutcomeRefused, submit.OutcomeUnknown}
	_ = submit.Retry{Host: "", Try: 0, Delay: time.Duration(0), Err: error(nil), Redial: false}
	_ = submit.Trace{DialStart: func(submit.DialInfo) {}, DialDone: func(submit.DialInfo) {}, GotConn: func(submit.ConnInfo) {},
		MessageStart: func(submit.MessageInfo) {}, MessageDone: func(submit.MessageInfo) {}}
	_ = submit.DialInfo{Host: "", Elapsed: time.Duration(0), Conn: submit.ConnInfo{}, Err: error(nil)}
	_ = submit.ConnInfo{ID: 0, Host: "", Candidate: tlsmode.Candidate{}, Messages: 0, Reused: false, IdleTime: time.Duration(0)}
	_ = submit.MessageInfo{Conn: submit.ConnInfo{}, Try: 0, Recipients: 0, Size: 0, Chunking: false, Outcome: submit.OutcomeNotSent,
		Accepted: 0, Rejected: 0, QueueID: "", Step: "", Err: error(nil), Elapsed: time.Duration(0), Envelope: time.Duration(0)}

	_ error                              = &submit.SendError{Rejected: []submit.RecipientError{{Addr: "", Reply: (*submit.Reply)(nil)}}}
	_ func(*submit.SendError) []string   = (*submit.SendError).Retry
	_ func(*submit.SendError) string     = (*submit.SendError).Advice
	_ func(submit.RecipientError) string = submit.RecipientError.Advice
	_                                    = submit.DSNOptions{Return: "HDRS", Notify: []string{"FAILURE"}, EnvelopeID: ""}

	_ func(string) (*submit.Dialer, string, error) = submit.ParseURL
	_ func(string) string                          = submit.RedactURL

	_ = submit.Server{Host: "", Candidates: []tlsmode.Candidate(nil), Source: "", Origin: "", Provider: "", Username: ""}

	_ func(context.Context, *submit.Trace) context.Context = submit.WithTrace
	_                                                      = submit.Trace{ConnectStart: func(submit.Attempt) {}, AttemptDone: func(submit.Attempt) {}}
)

// TestSentinelsAreDistinct: programs branch on the sentinels, so none may
// match another.
func TestSentinelsAreDistinct(t *testing.T) {
	sentinels := []error{submit.ErrSTARTTLSStripped, submit.ErrResponseInjection, submit.ErrPlaintextAuth, submit.ErrAuthFailed,
		submit.ErrOutcomeUnknown, submit.ErrWrongMode, submit.ErrCertificate, submit.ErrTLSVersion, submit.ErrProtocol,
		submit.ErrBadAddress, submit.ErrMechanismUnavailable, submit.ErrTokenUnavailable, submit.ErrLineTooLong,
		submit.ErrBadURL, submit.ErrExtensionMissing, submit.ErrMailerClosed, submit.ErrMessageTooLarge}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if i != j && errors.Is(a, b) {
				t.Errorf("sentinel %v is %v: programs could not tell them apart", a, b)
			}
		}
	}
}

// TestExportedNamesBudget keeps package submit small: every exported name
// is a promise once tagged, so the package holds at most 65 top-level ones
// (constants, variables, functions and types; not methods or fields). The
// values of an enumerated type (a const block whose first constant has the
// package's own type) are one promise with their type, so they count once,
// as the type.
func TestExportedNamesBudget(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	types := map[string]bool{} // the package's own types
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, s := range g.Specs {
					types[s.(*ast.TypeSpec).Name.Name] = true
				}
			}
		}
	}
	var names []string
	for _, f := range parsed {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					names = append(names, d.Name.Name)
				}
			case *ast.GenDecl:
				if enumerates(d, types) {
					continue
				}
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(names)
	t.Logf("%d exported names: %s", len(names), strings.Join(names, " "))
	// 60; KindOf; Outcome (what the server may have of a message is a
	// fact programs branch on); the info structs of the Trace hooks of a
	// Dial, a connection and a message.
	if len(names) > 65 {
		t.Errorf("package submit exports %d top-level names; the budget is 65", len(names))
	}
}

// enumerates reports a const block of values of one of the package's own
// types: its first constant is declared with that type.
func enumerates(d *ast.GenDecl, types map[string]bool) bool {
	if d.Tok != token.CONST || len(d.Specs) == 0 {
		return false
	}
	vs, ok := d.Specs[0].(*ast.ValueSpec)
	if !ok || vs.Type == nil {
		return false
	}
	id, ok := vs.Type.(*ast.Ident)
	return ok && types[id.Name]
}
