package otelportwise

import (
	"crypto/tls"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/portwise/portwise/submit"
)

// sentinels name portwise's sentinel errors for error.type, in the order
// they are looked for.
var sentinels = []struct {
	err  error
	name string
}{
	{submit.ErrSTARTTLSStripped, "starttls_stripped"},
	{submit.ErrResponseInjection, "response_injection"},
	{submit.ErrWrongMode, "wrong_mode"},
	{submit.ErrTLSVersion, "tls_version"},
	{submit.ErrCertificate, "certificate"},
	{submit.ErrPlaintextAuth, "plaintext_auth"},
	{submit.ErrAuthFailed, "auth_failed"},
	{submit.ErrMechanismUnavailable, "mechanism_unavailable"},
	{submit.ErrTokenUnavailable, "token_unavailable"},
	{submit.ErrBadAddress, "bad_address"},
	{submit.ErrOutcomeUnknown, "outcome_unknown"},
	{submit.ErrProtocol, "protocol"},
}

// ErrorType returns the error.type value recorded for err, a short name
// of low cardinality: that of portwise's sentinel it wraps
// (starttls_stripped, response_injection, wrong_mode, tls_version,
// certificate, plaintext_auth, auth_failed, mechanism_unavailable,
// token_unavailable, bad_address, outcome_unknown, protocol); else the
// name of its submit.Kind, which says what a server's refusal means
// (rate_limited, recipient_unknown, auth_required, quota, ...) and what
// kind of network or TLS failure it was (unreachable, connection,
// insecure, canceled, deadline); and "_OTHER" for anything else. It
// returns "" for nil.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	if k := submit.KindOf(err); k != submit.KindOther {
		return k.String()
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

// errorAttrs is error.type for a failed stage, none for a good one.
func errorAttrs(err error) []attribute.KeyValue {
	if err == nil {
		return nil
	}
	return []attribute.KeyValue{semconv.ErrorTypeKey.String(ErrorType(err))}
}

// outcomeOf is the value of OutcomeKey for an attempt that ended with err.
func outcomeOf(err error) string {
	if err == nil {
		return outcomeWon
	}
	switch {
	case errors.Is(err, submit.ErrLostRace):
		return outcomeNotNeeded
	case errors.Is(err, submit.ErrDialEnded):
		return outcomeNotUsed
	}
	return outcomeFailed
}

// tlsVersion is a TLS version as tls.protocol.version has it: "1.3".
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return tls.VersionName(v)
}

// maxMechanisms bounds the mechanisms recorded from a server's EHLO.
const maxMechanisms = 16

// saslNames keeps the mechanism names a server offered that are SASL
// names (RFC 4422: 1 to 20 of A-Z, 0-9, '-', '_'), at most
// maxMechanisms: what a hostile server advertises is not copied into
// telemetry as it is.
func saslNames(mechs []string) []string {
	out := make([]string, 0, min(len(mechs), maxMechanisms))
	for _, m := range mechs {
		if len(out) == maxMechanisms {
			break
		}
		if isSASLName(m) {
			out = append(out, m)
		}
	}
	return out
}

func isSASLName(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for _, c := range []byte(s) {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// replyAttrs are smtp.reply.code and smtp.reply.enhanced_code of the
// server's reply that decided err, if one did: a StepError's reply, or
// of a SendError's refusals the one KindOf names (the first permanent,
// else the first). Only the codes: the reply's text may echo addresses.
func replyAttrs(err error) []attribute.KeyValue {
	var (
		r    *submit.Reply
		step *submit.StepError
		send *submit.SendError
	)
	switch {
	case errors.As(err, &step) && step.Reply != nil:
		r = step.Reply
	case errors.As(err, &send) && len(send.Rejected) > 0:
		r = send.Rejected[0].Reply
		for _, rcpt := range send.Rejected {
			if !submit.IsTemporary(rcpt) {
				r = rcpt.Reply
				break
			}
		}
	case errors.As(err, &r):
	}
	if r == nil {
		return nil
	}
	attrs := []attribute.KeyValue{ReplyCodeKey.Int(r.Code)}
	if isEnhancedCode(r.Enhanced) {
		attrs = append(attrs, EnhancedCodeKey.String(r.Enhanced))
	}
	return attrs
}

// isEnhancedCode reports an RFC 3463 status code, "5.7.8": class, then
// subject and detail of 1 to 3 digits each.
func isEnhancedCode(s string) bool {
	if len(s) < 5 || len(s) > 9 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return false
	}
	parts, n := 0, 0
	for _, c := range []byte(s[2:]) {
		switch {
		case '0' <= c && c <= '9' && n < 3:
			n++
		case c == '.' && n > 0 && parts == 0:
			parts, n = 1, 0
		default:
			return false
		}
	}
	return parts == 1 && n > 0
}
