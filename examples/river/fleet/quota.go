package fleet

import (
	"errors"
	"strings"
	"time"

	"github.com/portwise/portwise/submit"
)

// Quota is a provider's word that the account reached one of its sending
// limits: every send as the account will be refused until the limit
// resets, so the whole fleet pauses instead of each job finding out.
type Quota struct {
	// Rule names the rule that matched, e.g. "gmail-daily".
	Rule string
	// Pause is how long the account waits before it sends again.
	Pause time.Duration
}

// Matcher classifies a server's reply as a quota reply or not. Classify,
// over Rules, is the default; Config.Quota takes another (the library may
// one day export such a classification).
type Matcher func(*submit.Reply) (Quota, bool)

// Rule is one quota reply a provider documents.
type Rule struct {
	// Name names the rule in Quota, pauses and status ("gmail-daily").
	Name string
	// Code is the reply code, 0 for any.
	Code int
	// Enhanced is a prefix of the enhanced status code ("5.4.5", "4.7."),
	// "" for any.
	Enhanced string
	// Text lists words of which the reply's text must hold one, compared
	// case-insensitively; none means any text.
	Text []string
	// Pause is how long the account pauses.
	Pause time.Duration
	// Source is where the reply is documented.
	Source string
}

// Rules are the quota replies Classify knows. A daily limit is a rolling
// 24 hours at every provider listed: capacity comes back as old sends age
// out, so the account pauses an hour and tries one message again, rather
// than a day. A rate limit pauses briefly: the shared rate should be set
// below it.
var Rules = []Rule{
	{
		Name: "gmail-daily", Code: 550, Enhanced: "5.4.5", Text: []string{"daily"}, Pause: time.Hour,
		// "550 5.4.5 Daily user sending limit exceeded", "Daily sending
		// quota exceeded", "Daily SMTP relay limit exceeded for user".
		Source: "https://support.google.com/a/answer/3726730",
	},
	{
		Name: "workspace-relay-daily", Code: 550, Enhanced: "5.7.1", Text: []string{"daily smtp relay limit"}, Pause: time.Hour,
		// "550 5.7.1 Daily SMTP relay limit exceeded for customer".
		Source: "https://support.google.com/a/answer/3726730",
	},
	{
		Name: "workspace-relay-peak", Code: 450, Enhanced: "4.2.1", Text: []string{"peak smtp relay limit"}, Pause: time.Minute,
		// "450 4.2.1 Peak SMTP relay limit exceeded for customer. This is
		// a temporary error." (Not "the user you are trying to contact is
		// receiving mail too quickly", the same code about one recipient.)
		Source: "https://support.google.com/a/answer/3726730",
	},
	{
		Name: "ses-rate", Code: 454, Text: []string{"maximum sending rate exceeded"}, Pause: 10 * time.Second,
		// "454 Throttling failure: Maximum sending rate exceeded".
		Source: "https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html",
	},
	{
		Name: "ses-daily", Code: 454, Text: []string{"daily message quota exceeded"}, Pause: time.Hour,
		// "454 Throttling failure: Daily message quota exceeded".
		Source: "https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html",
	},
	{
		Name: "m365-daily", Code: 554, Enhanced: "5.2.0", Text: []string{"submissionquotaexceeded"}, Pause: time.Hour,
		// "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException":
		// the recipient rate limit, 10,000 a day.
		Source: "https://learn.microsoft.com/en-us/exchange/troubleshoot/send-emails/smtp-submission-improvements",
	},
	{
		Name: "throttle-421", Code: 421, Enhanced: "4.7.", Text: []string{"rate", "limit", "throttl", "too many"}, Pause: time.Minute,
		// A 421 with a 4.7.x (security or policy, RFC 3463) code whose
		// text names a rate or a limit: "421 4.7.0 ... unusual rate of
		// unsolicited mail ... temporarily blocked" at Gmail, and the
		// throttles other providers word alike.
		Source: "https://support.google.com/a/answer/3726730",
	},
}

// Classify reports whether r is a quota reply of Rules.
func Classify(r *submit.Reply) (Quota, bool) {
	if r == nil {
		return Quota{}, false
	}
	text := strings.ToLower(r.Text)
	for _, rule := range Rules {
		if rule.Code != 0 && rule.Code != r.Code || !strings.HasPrefix(r.Enhanced, rule.Enhanced) {
			continue
		}
		if len(rule.Text) == 0 || containsAny(text, rule.Text) {
			return Quota{Rule: rule.Name, Pause: rule.Pause}, true
		}
	}
	return Quota{}, false
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// quotaReply finds a quota reply in a send's error: the server's reply to
// MAIL FROM, a recipient, DATA or the message, over the authenticated
// session. A Dial's failure is never one: before AUTH the server does not
// know the account, and before TLS is verified anyone on the path can
// write a reply. Nor is ErrOutcomeUnknown, which carries no reply.
func quotaReply(err error, match Matcher) (Quota, *submit.Reply, bool) {
	var (
		de *submit.DialError
		se *submit.SendError
		r  *submit.Reply
	)
	switch {
	case err == nil, errors.Is(err, submit.ErrOutcomeUnknown), errors.As(err, &de):
	case errors.As(err, &se):
		for _, rr := range se.Rejected {
			if q, ok := match(rr.Reply); ok {
				return q, rr.Reply, true
			}
		}
	case errors.As(err, &r):
		if q, ok := match(r); ok {
			return q, r, true
		}
	}
	return Quota{}, nil, false
}
