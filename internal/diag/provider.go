package diag

import (
	"net"
	"regexp"
	"slices"
	"strings"
)

// ProviderAdvice is what a provider's reply means and what fixes it.
type ProviderAdvice struct {
	Provider string // "Microsoft 365", "Gmail", "Amazon SES", ...
	ID       string // stable short id, e.g. "m365-basic-auth-disabled"
	Cause    string // one sentence: what the reply means, in plain words
	Fix      string // one sentence: what to do, in neutral words (no Go or CLI names)
	FixGo    string // the fix for a Go programmer using package submit ("" = Fix); may name submit.XOAuth2, submit.PasswordAuth, Dialer fields…
	FixCLI   string // the fix for a user of the portwise command ("" = Fix); may name flags: -user, -password-env VAR, -xoauth2-token-env VAR, -port N/starttls|implicit, -ca FILE
	Docs     string // the provider's help URL for this problem
	// Reason is what the refusal means ("" words: ReasonNone), when the
	// provider's knowledge says more than the reply's codes.
	Reason Reason
	// Retry is whether trying again later may work, when the provider's
	// knowledge contradicts the reply's code: a 4xx that never clears, a
	// 5xx that is a rate limit. RetryByCode leaves it to the code.
	Retry Retry
}

// Retry says whether trying again later may work.
type Retry uint8

// The answers to whether trying again later may work.
const (
	RetryByCode Retry = iota // as the reply's code says: a 4xx may clear, a 5xx does not
	RetryLater               // it clears with time, whatever the code (GMX's 550 rate limit)
	RetryNever               // it does not clear by waiting, whatever the code (Mailgun's sandbox 421)
)

// MatchProvider returns the advice for a server reply, if the reply (code,
// enhanced status code "5.7.139" or "", text without the codes) or the host
// it came from identifies a known provider problem. host may be "".
//
// A rule fires only on what is specific to one provider: its own enhanced
// code together with its wording, wording no other server uses, or a reply
// from the provider's own submission host. A generic reply ("535 5.7.8
// Error: authentication failed", "550 relay not permitted") from any other
// server never matches.
func MatchProvider(host string, code int, enhanced, text string) (ProviderAdvice, bool) {
	r := reply{host: normaliseHost(host), code: code, enhanced: strings.TrimSpace(enhanced), text: normaliseText(text)}
	if r.enhanced == "" {
		// Tolerate a caller that left the enhanced code in the text.
		if m := leadingEnhanced.FindStringSubmatch(r.text); m != nil {
			r.enhanced, r.text = m[1], r.text[len(m[0]):]
		}
	}
	for i := range rules {
		if rules[i].matches(r) {
			return rules[i].advice, true
		}
	}
	return ProviderAdvice{}, false
}

// reply is a server reply normalised for matching.
type reply struct {
	host     string // lower case, no port, no trailing dot
	code     int
	enhanced string
	text     string // lower case, runs of white space collapsed to one space
}

var leadingEnhanced = regexp.MustCompile(`^([245]\.\d{1,3}\.\d{1,3}) `)

func normaliseHost(host string) string {
	host = strings.TrimSpace(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

func normaliseText(text string) string {
	return strings.ToLower(strings.Join(strings.Fields(text), " "))
}

// provider identifies a provider by its submission hosts and by marks it
// writes into its replies.
type provider struct {
	name  string
	hosts func(host string) bool
	marks []string // lower case
}

func (p *provider) ownsHost(host string) bool { return host != "" && p.hosts(host) }

func (p *provider) sent(r reply) bool {
	return p.ownsHost(r.host) || slices.ContainsFunc(p.marks, func(m string) bool { return strings.Contains(r.text, m) })
}

func hostIn(names ...string) func(string) bool {
	return func(h string) bool { return slices.Contains(names, h) }
}

var (
	microsoft = &provider{
		name: "Microsoft 365",
		hosts: func(h string) bool {
			return hostIn("smtp.office365.com", "smtp-mail.outlook.com", "outlook.office365.com",
				"smtp-legacy.office365.com", "smtp.office365.us")(h) ||
				strings.HasSuffix(h, ".mail.protection.outlook.com")
		},
		// Exchange Online names its front-end server in brackets
		// ("[BN3PR03CA0067.namprd03.prod.outlook.com]") and links aka.ms.
		marks: []string{".prod.outlook.com", "outlook.office365.com", "https://aka.ms/"},
	}
	google = &provider{
		name:  "Gmail",
		hosts: hostIn("smtp.gmail.com", "smtp.googlemail.com", "smtp-relay.gmail.com"),
		marks: []string{" - gsmtp", "support.google.com/"},
	}
	yahoo = &provider{
		name:  "Yahoo Mail / AOL Mail",
		hosts: hostIn("smtp.mail.yahoo.com", "smtp.aol.com"),
	}
	apple = &provider{
		name:  "iCloud Mail",
		hosts: hostIn("smtp.mail.me.com"),
	}
	ses = &provider{
		name:  "Amazon SES",
		hosts: isSESHost,
	}
	sendgrid = &provider{
		name:  "SendGrid",
		hosts: hostIn("smtp.sendgrid.net"),
		marks: []string{"sendgrid.com/"},
	}
	mailgun = &provider{
		name:  "Mailgun",
		hosts: hostIn("smtp.mailgun.org", "smtp.eu.mailgun.org"),
	}
	postmark = &provider{
		name:  "Postmark",
		hosts: hostIn("smtp.postmarkapp.com", "smtp-broadcasts.postmarkapp.com"),
	}
	zoho = &provider{
		name:  "Zoho Mail",
		hosts: isZohoHost,
	}
	fastmail = &provider{
		name:  "Fastmail",
		hosts: hostIn("smtp.fastmail.com", "mail.messagingengine.com"),
	}
	gmx = &provider{
		name:  "GMX / WEB.DE",
		hosts: hostIn("mail.gmx.net", "mail.gmx.com", "smtp.web.de"),
	}
	maddy = &provider{
		name:  "maddy",
		hosts: func(string) bool { return false }, // anyone's server
	}
)

// isSESHost matches email-smtp.REGION.amazonaws.com and its FIPS variant.
func isSESHost(h string) bool {
	for _, prefix := range []string{"email-smtp.", "email-smtp-fips."} {
		if region, ok := strings.CutPrefix(h, prefix); ok {
			region, ok = strings.CutSuffix(region, ".amazonaws.com")
			return ok && region != "" && !strings.Contains(region, ".")
		}
	}
	return false
}

// isZohoHost matches Zoho's regional submission hosts: smtp.zoho.com,
// smtp.zoho.eu, smtp.zoho.in, smtppro.zoho.com.au, smtp.zohocloud.ca, ...
var zohoHost = regexp.MustCompile(`^smtp(?:pro)?\.zoho(?:cloud)?\.[a-z]{2,3}(?:\.[a-z]{2})?$`)

func isZohoHost(h string) bool { return zohoHost.MatchString(h) }

// need says what, besides code and wording, a rule needs to know that the
// reply came from its provider.
type need int

const (
	wording need = iota // the enhanced code and wording are the provider's own
	sign                // the provider's host or a mark in the text
	ownHost             // the provider's host: the wording is generic
)

// rule recognises one provider problem.
type rule struct {
	advice   ProviderAdvice
	from     *provider
	need     need
	codes    []int    // nil: any reply code
	enhanced []string // nil: any enhanced code ("" among them: none)
	all      []string // lower-case phrases that must all appear
	any      []string // lower-case phrases of which one must appear (nil: none needed)
}

func (ru *rule) matches(r reply) bool {
	if ru.codes != nil && !slices.Contains(ru.codes, r.code) {
		return false
	}
	if ru.enhanced != nil && !slices.Contains(ru.enhanced, r.enhanced) {
		return false
	}
	for _, p := range ru.all {
		if !strings.Contains(r.text, p) {
			return false
		}
	}
	if ru.any != nil && !slices.ContainsFunc(ru.any, func(p string) bool { return strings.Contains(r.text, p) }) {
		return false
	}
	switch ru.need {
	case sign:
		return ru.from.sent(r)
	case ownHost:
		return ru.from.ownsHost(r.host)
	}
	return true
}

// Advice shared by more than one rule.
var (
	m365AuthUnsuccessful = ProviderAdvice{
		Provider: microsoft.name,
		ID:       "m365-auth-unsuccessful",
		Cause:    "Microsoft 365 refused the sign-in without giving a reason; usually authenticated SMTP is disabled for the mailbox, the password is wrong or expired, or a security policy (security defaults, multi-factor authentication, Conditional Access) blocks password sign-ins.",
		Fix:      "Have the admin enable authenticated SMTP for the mailbox, check the user name (the full address) and password, and prefer OAuth2 (XOAUTH2), which those policies allow.",
		FixGo:    "Authenticate with submit.XOAuth2 and a token for https://outlook.office.com/SMTP.Send rather than submit.PasswordAuth, and have the admin enable SMTP AUTH for the mailbox.",
		FixCLI:   "Run with -user ADDRESS -xoauth2-token-env VAR (an OAuth2 access token for the mailbox) rather than -password-env, and have the admin enable SMTP AUTH for the mailbox.",
		Docs:     "https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
	}
	m365SendAsDenied = ProviderAdvice{
		Provider: "Microsoft 365 / Exchange",
		ID:       "m365-send-as-denied",
		Cause:    "The mailbox you signed in as may not send as the sender address of this message, because Exchange (and so Microsoft 365) sends only as the signed-in mailbox or an address it has Send As rights for.",
		Fix:      "Send from the address you sign in with, or have the admin grant the mailbox Send As permission for the sender address.",
		FixGo:    "Make the envelope sender and the From header the address you authenticate as, or have the admin grant Send As rights for the address you use.",
		FixCLI:   "Give -from the same address as -user, or have the admin grant the mailbox Send As rights for the -from address.",
		Docs:     "https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365",
		Reason:   ReasonSender,
	}
	gmailWebLogin = ProviderAdvice{
		Provider: google.name,
		ID:       "gmail-web-login-required",
		Cause:    "Google blocked this sign-in as unusual and wants the account holder to sign in through a web browser first.",
		Fix:      "Sign in to the Google account in a browser, confirm the blocked attempt was you, and then retry with an app password or OAuth2 (XOAUTH2).",
		FixGo:    "After confirming the sign-in in a browser, authenticate with submit.PasswordAuth and an app password, or submit.XOAuth2 with a token for https://mail.google.com/.",
		FixCLI:   "After confirming the sign-in in a browser, run again with an app password in the -password-env variable, or with -xoauth2-token-env VAR.",
		Docs:     "https://support.google.com/mail/answer/78754",
	}
	mailgunBadCredentials = ProviderAdvice{
		Provider: mailgun.name,
		ID:       "mailgun-bad-credentials",
		Cause:    "Mailgun rejected the SMTP login: it wants the sending domain's SMTP credentials (a user such as postmaster@your-domain and its SMTP password), not the account login or an API key, and EU domains sign in at smtp.eu.mailgun.org.",
		Fix:      "Copy the SMTP user name and password from the domain's settings in Mailgun (reset the password if it is not known) and connect to the host of the domain's region.",
		FixGo:    "Use submit.PasswordAuth with the domain's SMTP login and password, and dial smtp.eu.mailgun.org for a domain in the EU region.",
		FixCLI:   "Run with -user set to the domain's SMTP login and -password-env VAR holding its SMTP password, against smtp.eu.mailgun.org for a domain in the EU region.",
		Docs:     "https://documentation.mailgun.com/docs/mailgun/user-manual/smtp-protocol/",
	}
)

// rules are tried in order; the first that matches wins, so a specific rule
// comes before a general one of the same provider.
var rules = []rule{
	// Microsoft 365 and Outlook.com.
	{
		from: microsoft, need: wording, codes: []int{535}, enhanced: []string{"5.7.139"},
		all: []string{"basic authentication is disabled"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-basic-auth-disabled",
			Cause:    "Microsoft no longer accepts a password over SMTP for this account, because basic authentication is turned off for it (as for all Outlook.com accounts and most Microsoft 365 tenants), so even a correct password or an app password is refused.",
			Fix:      "Sign in with OAuth2 (XOAUTH2) using an access token for the mailbox, and have the Microsoft 365 admin make sure authenticated SMTP is enabled for the mailbox.",
			FixGo:    "Authenticate with submit.XOAuth2(user, tokenSource), the token granting https://outlook.office.com/SMTP.Send, instead of submit.PasswordAuth, and have the admin enable SMTP AUTH for the mailbox.",
			FixCLI:   "Run with -user ADDRESS -xoauth2-token-env VAR, VAR holding an OAuth2 access token with the SMTP.Send scope, instead of -password-env.",
			Docs:     "https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth",
		},
	},
	{
		from: microsoft, need: wording, codes: []int{535}, enhanced: []string{"5.7.139"},
		all: []string{"smtpclientauthentication is disabled"}, any: []string{"tenant", "mailbox"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-smtp-auth-disabled",
			Cause:    "Authenticated SMTP (SMTP AUTH) is switched off for this Microsoft 365 tenant or mailbox, so the server refuses every sign-in over SMTP, whatever the credentials.",
			Fix:      "Have the Microsoft 365 admin enable authenticated SMTP for this mailbox (in the admin center under the user's mail apps, or for the tenant), then sign in with OAuth2 (XOAUTH2).",
			FixGo:    "Once the admin has enabled SMTP AUTH for the mailbox, authenticate with submit.XOAuth2 and a token granting https://outlook.office.com/SMTP.Send.",
			FixCLI:   "Once the admin has enabled SMTP AUTH for the mailbox, run with -user ADDRESS -xoauth2-token-env VAR.",
			Docs:     "https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
		},
	},
	{
		from: microsoft, need: wording, codes: []int{535}, enhanced: []string{"5.7.139"},
		all: []string{"user credentials were incorrect"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-credentials-incorrect",
			Cause:    "Microsoft 365 rejected the user name or the password.",
			Fix:      "Check that the user name is the mailbox's full address and the password is current, or sign in with OAuth2 (XOAUTH2) instead of a password.",
			FixGo:    "Check the user name and password given to submit.PasswordAuth, or switch to submit.XOAuth2.",
			FixCLI:   "Check -user and the password in the -password-env variable, or switch to -xoauth2-token-env VAR.",
			Docs:     "https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
		},
	},
	{
		from: microsoft, need: wording, codes: []int{535}, enhanced: []string{"5.7.139"},
		all: []string{"security defaults policy"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-security-defaults",
			Cause:    "The tenant has Microsoft Entra security defaults turned on, which block every password sign-in over SMTP (legacy authentication) even when SMTP AUTH is enabled for the mailbox.",
			Fix:      "Sign in with OAuth2 (XOAUTH2), which security defaults allow, or have the admin replace security defaults with Conditional Access policies that let this mailbox sign in.",
			FixGo:    "Authenticate with submit.XOAuth2 and a token granting https://outlook.office.com/SMTP.Send instead of submit.PasswordAuth, or have the admin replace security defaults with Conditional Access policies that let this mailbox sign in.",
			FixCLI:   "Run with -user ADDRESS -xoauth2-token-env VAR instead of -password-env, or have the admin replace security defaults with Conditional Access policies that let this mailbox sign in.",
			Docs:     "https://learn.microsoft.com/en-us/entra/fundamentals/security-defaults",
		},
	},
	{
		from: microsoft, need: wording, codes: []int{535}, enhanced: []string{"5.7.139"},
		all: []string{"did not meet the criteria to be authenticated"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-conditional-access",
			Cause:    "A Microsoft Entra Conditional Access policy (one that blocks legacy authentication, or that wants multi-factor authentication or a trusted network) refused this password sign-in over SMTP.",
			Fix:      "Sign in with OAuth2 (XOAUTH2), or have the admin exclude this mailbox or this network from the policy, which the mailbox's sign-in logs name.",
			FixGo:    "Authenticate with submit.XOAuth2 and a token granting https://outlook.office.com/SMTP.Send, or have the admin exclude this mailbox or this network from the policy, which the mailbox's sign-in logs name.",
			FixCLI:   "Run with -user ADDRESS -xoauth2-token-env VAR, or have the admin exclude this mailbox or this network from the policy, which the mailbox's sign-in logs name.",
			Docs:     "https://learn.microsoft.com/entra/identity/conditional-access/howto-conditional-access-policy-block-legacy",
		},
	},
	{from: microsoft, need: wording, codes: []int{535}, enhanced: []string{"5.7.139"}, advice: m365AuthUnsuccessful},
	{
		from: microsoft, need: sign, codes: []int{535}, enhanced: []string{"5.7.3", ""},
		all: []string{"authentication unsuccessful"}, advice: m365AuthUnsuccessful,
	},
	{
		from: microsoft, need: wording, codes: []int{550}, enhanced: []string{"5.7.30"},
		all: []string{"basic authentication is not supported for client submission"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-basic-auth-retired",
			Cause:    "Exchange Online has retired passwords (basic authentication) for SMTP client submission, so it refuses any sign-in with a user name and password.",
			Fix:      "Sign in with OAuth2 (XOAUTH2) using an access token for the mailbox.",
			FixGo:    "Authenticate with submit.XOAuth2(user, tokenSource), the token granting https://outlook.office.com/SMTP.Send, instead of submit.PasswordAuth.",
			FixCLI:   "Run with -user ADDRESS -xoauth2-token-env VAR instead of -password-env.",
			Docs:     "https://techcommunity.microsoft.com/blog/exchange/exchange-online-to-retire-basic-auth-for-client-submission-smtp-auth/4114750",
		},
	},
	{
		// Exchange on premises uses 5.7.57 too, in other words.
		from: microsoft, need: sign, codes: []int{530, 550}, enhanced: []string{"5.7.57"},
		all: []string{"client not authenticated to send mail"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-client-not-authenticated",
			Cause:    "The client started a message without having signed in, and Microsoft 365 accepts mail on its submission port only after a successful sign-in.",
			Fix:      "Configure the mailbox's address and an OAuth2 token (or password) so the client signs in before sending.",
			FixGo:    "Set Dialer.Auth, preferably to submit.XOAuth2 (submit.PasswordAuth where still allowed); a nil Auth sends without signing in.",
			FixCLI:   "Run with -user ADDRESS and -xoauth2-token-env VAR (or -password-env VAR).",
			Docs:     "https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365",
			Reason:   ReasonAuthRequired,
		},
	},
	{
		from: microsoft, need: wording, codes: []int{550}, enhanced: []string{"5.7.64"},
		all: []string{"tenantattribution"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-tenant-attribution",
			Cause:    "Microsoft 365 could not tie this connection to a tenant and so refuses to relay: the client did not sign in, and no inbound connector recognises its public IP address or TLS certificate (often after either changed).",
			Fix:      "Sign in to smtp.office365.com with the mailbox's credential, or have the admin update the inbound connector with the client's current public IP address or certificate name.",
			FixGo:    "Set Dialer.Auth (preferably submit.XOAuth2) and dial smtp.office365.com, or have the admin update the inbound connector with this client's public IP address or certificate name.",
			FixCLI:   "Run with -user ADDRESS and -xoauth2-token-env VAR (or -password-env VAR) against smtp.office365.com, or have the admin update the inbound connector with this machine's public IP address.",
			Docs:     "https://learn.microsoft.com/en-us/exchange/troubleshoot/email-delivery/ndr/relay-access-denied-smtp",
			Reason:   ReasonAuthRequired,
		},
	},
	{
		// Exchange on premises says the same with 5.7.1.
		from: microsoft, need: wording, codes: []int{550}, enhanced: []string{"5.7.60", "5.7.1"},
		all: []string{"client does not have permissions to send as this sender"}, advice: m365SendAsDenied,
	},
	{
		from: microsoft, need: wording, codes: []int{554}, enhanced: []string{"5.2.0"},
		all: []string{"sendasdeniedexception"}, advice: m365SendAsDenied,
	},
	{
		from: microsoft, need: sign, codes: []int{432, 421}, enhanced: []string{"4.3.2"},
		any: []string{"concurrent connections limit exceeded", "sender thread limit exceeded"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-too-many-connections",
			Cause:    "Microsoft 365 lets one mailbox submit only a few messages at the same time (three connections), and this one went over the limit.",
			Fix:      "Send over fewer simultaneous connections for this mailbox (three at most, counting other programs that use it) and retry the message a little later.",
			FixGo:    "Cap the connections per mailbox, for example with one submit.Mailer whose MaxConns is 3 or fewer shared by all senders, and retry: the error is temporary.",
			FixCLI:   "Wait a minute and run again; other programs sending as the same mailbox at the same time count against the same limit.",
			Docs:     "https://learn.microsoft.com/en-us/exchange/troubleshoot/send-emails/smtp-submission-improvements",
			Reason:   ReasonRateLimited,
		},
	},
	{
		// Exchange on premises has the same exception with its own limits.
		from: microsoft, need: sign, codes: []int{554}, enhanced: []string{"5.2.0"},
		all: []string{"submissionquotaexceededexception"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-submission-quota-exceeded",
			Cause:    "The mailbox has reached Exchange Online's sending limit (10,000 recipients in 24 hours), so Microsoft refuses more mail from it for now.",
			Fix:      "Wait until enough of the last 24 hours' messages fall out of the window, and send bulk mail through a service built for it.",
			Docs:     "https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/fix-error-for-submission-quota-exceeded-in-exchange-online",
			Reason:   ReasonQuota,
		},
	},
	{
		from: microsoft, need: wording, codes: []int{554}, enhanced: []string{"5.2.0"},
		all: []string{"outboundspamexception"},
		advice: ProviderAdvice{
			Provider: "Outlook.com",
			ID:       "outlook-outbound-spam",
			Cause:    "Outlook.com held the message back as possible spam from this account, which usually means the account is new or unverified or has reached its daily sending limit.",
			Fix:      "Sign in at outlook.com, complete any verification it asks for, and send fewer messages until the account's limits rise.",
			Docs:     "https://support.microsoft.com/office/sending-limits-in-outlook-com-279ee200-594c-40f0-9ec8-bb6af7735c2e",
			Reason:   ReasonQuota,
		},
	},
	{
		from: microsoft, need: wording, codes: []int{421}, enhanced: []string{"4.7.66"},
		all: []string{"tls 1.0 and 1.1 are not supported"},
		advice: ProviderAdvice{
			Provider: microsoft.name,
			ID:       "m365-tls-too-old",
			Cause:    "The connection used TLS 1.0 or 1.1, which Microsoft 365 no longer accepts.",
			Fix:      "Connect with TLS 1.2 or later, and if the client already offers it, remove the TLS-intercepting proxy or filter on the path that downgrades the connection.",
			FixGo:    "portwise never offers less than TLS 1.2, so something on the path (a TLS-intercepting proxy or a custom Dialer.NetDialer) negotiated the old version: connect without it.",
			FixCLI:   "portwise never offers less than TLS 1.2, so a TLS-intercepting proxy or filter on the path negotiated the old version: run from a network without it.",
			Docs:     "https://aka.ms/smtp_auth_tls",
		},
	},

	// Gmail and Google Workspace.
	{
		from: google, need: wording, codes: []int{535}, enhanced: []string{"5.7.8"},
		all: []string{"username and password not accepted"},
		advice: ProviderAdvice{
			Provider: google.name,
			ID:       "gmail-bad-credentials",
			Cause:    "Google rejected the user name and password, and Gmail no longer accepts the account's own password from mail programs.",
			Fix:      "Turn on 2-Step Verification for the Google account and sign in with an app password, or use OAuth2 (XOAUTH2), with the full Gmail address as the user name.",
			FixGo:    "Use submit.PasswordAuth(address, appPassword) with a 16-letter app password, or submit.XOAuth2 with a token for https://mail.google.com/.",
			FixCLI:   "Put an app password in the variable named by -password-env, or run with -xoauth2-token-env VAR holding an OAuth2 access token.",
			Docs:     "https://support.google.com/mail/?p=BadCredentials",
		},
	},
	{
		from: google, need: wording, codes: []int{534}, enhanced: []string{"5.7.9"},
		all: []string{"application-specific password required"},
		advice: ProviderAdvice{
			Provider: google.name,
			ID:       "gmail-app-password-required",
			Cause:    "The Google account has 2-Step Verification on, so Gmail wants an app password (or OAuth2) instead of the account's own password; the mechanism itself is fine.",
			Fix:      "Create an app password for the Google account and sign in with it, or use OAuth2 (XOAUTH2).",
			FixGo:    "Use submit.PasswordAuth(address, appPassword) with the 16-letter app password, or submit.XOAuth2 with a token for https://mail.google.com/.",
			FixCLI:   "Put the app password in the variable named by -password-env, or run with -xoauth2-token-env VAR.",
			Docs:     "https://support.google.com/accounts/answer/185833",
		},
	},
	{
		from: google, need: wording, codes: []int{534}, enhanced: []string{"5.7.9"},
		all: []string{"log in with your web browser"}, advice: gmailWebLogin,
	},
	{
		from: google, need: wording, codes: []int{534}, enhanced: []string{"5.7.14"},
		all: []string{"log in via your web browser"}, advice: gmailWebLogin,
	},
	{
		from: google, need: sign, codes: []int{454}, enhanced: []string{"4.7.0"},
		all: []string{"too many login attempts"},
		advice: ProviderAdvice{
			Provider: google.name,
			ID:       "gmail-too-many-logins",
			Cause:    "Gmail limits how often an account may sign in over SMTP, and this client signed in too often in a short time.",
			Fix:      "Wait a few minutes before retrying, and send many messages over one signed-in connection instead of signing in for each.",
			FixGo:    "Send through one long-lived submit.Mailer, which keeps signed-in sessions open, instead of dialling for each message, and back off before retrying.",
			FixCLI:   "Wait a few minutes before running again, and send fewer separate runs.",
			Docs:     "https://support.google.com/mail/answer/7126229",
			Reason:   ReasonRateLimited,
		},
	},
	{
		from: google, need: sign, codes: []int{421}, enhanced: []string{"4.7.0"},
		all: []string{"try again later, closing connection"},
		advice: ProviderAdvice{
			Provider: google.name,
			ID:       "gmail-try-again-later",
			Cause:    "Gmail refused the session for now, a temporary limit that a generic EHLO name such as \"localhost\" or too many connections often trigger.",
			Fix:      "Retry later with backoff, and announce the machine's real fully qualified host name in EHLO.",
			FixGo:    "Set Dialer.LocalName to this machine's fully qualified host name (it defaults to \"localhost\") and retry with backoff: the error is temporary.",
			FixCLI:   "Wait a few minutes and run again: the error is temporary.",
			Docs:     "https://support.google.com/a/answer/3726730",
			Reason:   ReasonRateLimited,
		},
	},
	{
		from: google, need: wording, codes: []int{550}, enhanced: []string{"5.4.5"},
		any: []string{"daily user sending quota exceeded", "daily user sending limit exceeded"},
		advice: ProviderAdvice{
			Provider: google.name,
			ID:       "gmail-daily-limit",
			Cause:    "The Google account has reached Gmail's daily sending limit (about 500 recipients a day for a personal account, 2,000 for Google Workspace).",
			Fix:      "Wait up to 24 hours for the limit to reset, and send bulk mail through a service built for it.",
			Docs:     "https://support.google.com/a/answer/166852",
			Reason:   ReasonQuota,
		},
	},
	{
		from: google, need: wording, codes: []int{550}, enhanced: []string{"5.7.1"},
		all: []string{"daily smtp relay limit exceeded"},
		advice: ProviderAdvice{
			Provider: "Google Workspace SMTP relay",
			ID:       "workspace-relay-daily-limit",
			Cause:    "The Google Workspace organisation has relayed as many messages through smtp-relay.gmail.com as its daily relay limit allows (per user and per organisation, counted over a rolling 24 hours).",
			Fix:      "Wait for the rolling 24-hour window to move on, and send bulk mail through a service built for it.",
			Docs:     "https://support.google.com/a/answer/6140680#dailylimit",
			Reason:   ReasonQuota,
		},
	},
	{
		from: google, need: wording, codes: []int{550}, enhanced: []string{"5.7.1", "5.7.0"},
		all: []string{"invalid credentials for relay"},
		advice: ProviderAdvice{
			Provider: "Google Workspace SMTP relay",
			ID:       "workspace-relay-invalid-credentials",
			Cause:    "The Google Workspace SMTP relay could not tie this connection to the organisation: the client neither signed in nor connected from an IP address registered in the relay settings, or the domain it presented (in EHLO and MAIL FROM) is not one of the organisation's.",
			Fix:      "Sign in with a Workspace account, or register this client's public IP address in the Admin console's SMTP relay settings, and send from an address in one of the organisation's domains.",
			FixGo:    "Set Dialer.Auth to a Workspace account's credential (submit.PasswordAuth with an app password, or submit.XOAuth2), or register this client's public IP address in the SMTP relay settings, and send from an address in one of the organisation's domains.",
			FixCLI:   "Run with -user and -password-env (an app password) or -xoauth2-token-env, or register this machine's public IP address in the SMTP relay settings, and give -from an address in one of the organisation's domains.",
			Docs:     "https://support.google.com/a/answer/6140680#invalidcred",
			Reason:   ReasonAuthRequired,
		},
	},
	{
		from: google, need: wording, codes: []int{552}, enhanced: []string{"5.2.3"},
		all: []string{"exceeded google's message size limits"},
		advice: ProviderAdvice{
			Provider: google.name,
			ID:       "gmail-message-too-large",
			Cause:    "The message is larger than Gmail accepts (25 MB, counting the growth of attachments when they are encoded).",
			Fix:      "Share large files as links (for example from Google Drive) or split them across several messages.",
			Docs:     "https://support.google.com/mail/?p=MaxSizeError",
			Reason:   ReasonContent,
		},
	},
	{
		from: google, need: sign, codes: []int{530}, enhanced: []string{"5.7.0"},
		all: []string{"must issue a starttls command first"},
		advice: ProviderAdvice{
			Provider: google.name,
			ID:       "gmail-starttls-required",
			Cause:    "The client tried to sign in or send over an unencrypted connection, and Gmail requires TLS first.",
			Fix:      "Connect to port 587 with STARTTLS or port 465 with implicit TLS.",
			FixGo:    "Dial with the default candidates (tlsmode.Default: 587 with STARTTLS, 465 with implicit TLS) rather than a Candidate with tlsmode.Plaintext.",
			FixCLI:   "Run with -port 587/starttls or -port 465/implicit.",
			Docs:     "https://support.google.com/a/answer/176600",
		},
	},
	{
		from: google, need: sign, codes: []int{530}, enhanced: []string{"5.5.1"},
		all: []string{"authentication required"},
		advice: ProviderAdvice{
			Provider: google.name,
			ID:       "gmail-auth-required",
			Cause:    "The client started a message without signing in, and Gmail accepts mail on its submission ports only from signed-in accounts.",
			Fix:      "Configure the Gmail address and an app password or OAuth2 token so the client signs in before sending.",
			FixGo:    "Set Dialer.Auth to submit.PasswordAuth with an app password, or to submit.XOAuth2; a nil Auth sends without signing in.",
			FixCLI:   "Run with -user ADDRESS and -password-env VAR (holding an app password) or -xoauth2-token-env VAR.",
			Docs:     "https://support.google.com/mail/?p=WantAuthError",
			Reason:   ReasonAuthRequired,
		},
	},

	// Yahoo Mail and AOL Mail (one platform).
	{
		from: yahoo, need: wording, codes: []int{535}, enhanced: []string{"5.7.0", ""},
		all: []string{"(#auth005)"},
		advice: ProviderAdvice{
			Provider: yahoo.name,
			ID:       "yahoo-aol-bad-auth",
			Cause:    "Yahoo (or AOL) refused the sign-in because it does not accept the account's own password from mail programs, and it counts each refused attempt.",
			Fix:      "Generate an app password in the account's security settings and sign in with it, waiting a while first if the account is temporarily locked.",
			FixGo:    "Use submit.PasswordAuth(address, appPassword) with an app password generated for the account.",
			FixCLI:   "Put an app password in the variable named by -password-env.",
			Docs:     "https://help.yahoo.com/kb/SLN15241.html",
		},
	},
	{
		from: yahoo, need: ownHost, codes: []int{550}, enhanced: []string{""},
		all: []string{"request failed; mailbox unavailable"},
		advice: ProviderAdvice{
			Provider: yahoo.name,
			ID:       "yahoo-sender-mismatch",
			Cause:    "Yahoo refused the message, most often because its sender address is not the signed-in Yahoo address.",
			Fix:      "Send from the address you sign in with.",
			FixGo:    "Make the envelope sender and the From header the address you authenticate as.",
			FixCLI:   "Give -from the same address as -user.",
			Docs:     "https://help.yahoo.com/kb/SLN4075.html",
			Reason:   ReasonSender,
		},
	},

	{
		// "6.6.0" is no RFC 3463 code: it stays in the text, and only
		// Yahoo's front end writes it.
		from: yahoo, need: wording, codes: []int{554},
		all: []string{"6.6.0 error sending message for delivery"},
		advice: ProviderAdvice{
			Provider: yahoo.name,
			ID:       "yahoo-aol-from-header",
			Cause:    "Yahoo (or AOL) refused the message after its body, most often because its From header is missing or is not the signed-in address.",
			Fix:      "Put the address you sign in with in the message's From header.",
			FixGo:    "Make the message's From header (and the envelope sender) the address you authenticate as.",
			FixCLI:   "Give -from the same address as -user.",
			Docs:     "https://help.yahoo.com/kb/SLN4075.html",
			Reason:   ReasonSender,
		},
	},

	// iCloud Mail.
	{
		from: apple, need: ownHost, codes: []int{535},
		advice: ProviderAdvice{
			Provider: apple.name,
			ID:       "icloud-app-password-required",
			Cause:    "iCloud Mail refused the sign-in, and it accepts from other mail programs only an app-specific password, never the Apple Account password.",
			Fix:      "Generate an app-specific password for the Apple Account and sign in with it, using the full iCloud address as the user name.",
			FixGo:    "Use submit.PasswordAuth(address, appSpecificPassword).",
			FixCLI:   "Put the app-specific password in the variable named by -password-env and the full iCloud address in -user.",
			Docs:     "https://support.apple.com/en-us/102654",
		},
	},

	// Amazon SES.
	{
		from: ses, need: wording, codes: []int{554}, enhanced: []string{""},
		all: []string{"message rejected: email address is not verified"},
		advice: ProviderAdvice{
			Provider: ses.name,
			ID:       "ses-address-not-verified",
			Cause:    "Amazon SES refused the message because an address in it is not a verified identity in this AWS region: the sender always, and every recipient too while the account is in the SES sandbox.",
			Fix:      "Verify the sender's address or domain in the SES console of the region you send through, and request production access to leave the sandbox.",
			Docs:     "https://docs.aws.amazon.com/ses/latest/dg/verify-addresses-and-domains.html",
			Reason:   ReasonSender,
		},
	},
	{
		from: ses, need: wording, codes: []int{554},
		all: []string{"is not authorized to perform", "ses:sendrawemail"},
		advice: ProviderAdvice{
			Provider: ses.name,
			ID:       "ses-iam-not-authorized",
			Cause:    "Amazon SES refused the message because the IAM user that owns these SMTP credentials may not call ses:SendRawEmail for this sender identity (its policy lacks the action, or limits it to other identities).",
			Fix:      "Give the IAM user of the SMTP credentials a policy that allows ses:SendRawEmail on the sender's identity, or create SMTP credentials for a user that has one.",
			Docs:     "https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html",
			Reason:   ReasonAccount,
		},
	},
	{
		from: ses, need: wording, codes: []int{554},
		any: []string{"sending paused for this account", "sending suspended for this account"},
		advice: ProviderAdvice{
			Provider: ses.name,
			ID:       "ses-account-paused",
			Cause:    "AWS has paused (or suspended) the account's sending through Amazon SES, usually after reviewing its bounce and complaint rates, and refuses every message until sending is resumed.",
			Fix:      "Read the notice AWS sent to the account's email address and the SES reputation page, fix the cause, and ask AWS to resume sending.",
			Docs:     "https://docs.aws.amazon.com/ses/latest/dg/troubleshoot-error-messages.html",
			Reason:   ReasonAccount,
		},
	},
	{
		from: ses, need: wording, codes: []int{454}, enhanced: []string{""},
		all: []string{"throttling failure: maximum sending rate exceeded"},
		advice: ProviderAdvice{
			Provider: ses.name,
			ID:       "ses-max-send-rate",
			Cause:    "The account sent faster than its Amazon SES maximum send rate (messages per second).",
			Fix:      "Pace sending below the account's maximum send rate and retry the message after a short wait.",
			FixGo:    "Rate-limit calls to (*submit.Mailer).Send below the account's send rate and retry this one: the error is temporary.",
			Docs:     "https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html",
			Reason:   ReasonRateLimited,
		},
	},
	{
		from: ses, need: wording, codes: []int{454}, enhanced: []string{""},
		all: []string{"throttling failure: daily message quota exceeded"},
		advice: ProviderAdvice{
			Provider: ses.name,
			ID:       "ses-daily-quota",
			Cause:    "The account has sent its Amazon SES quota of messages for the last 24 hours.",
			Fix:      "Wait for the 24-hour window to move on, or ask AWS to raise the account's sending quota.",
			Docs:     "https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html",
			Reason:   ReasonQuota,
		},
	},
	{
		from: ses, need: ownHost, codes: []int{535},
		all: []string{"authentication credentials invalid"},
		advice: ProviderAdvice{
			Provider: ses.name,
			ID:       "ses-smtp-credentials-invalid",
			Cause:    "Amazon SES rejected the SMTP credentials, usually because they are an IAM access key and secret key (or a console password) rather than SES SMTP credentials, whose password is derived from a secret key for one region.",
			Fix:      "Create SMTP credentials in the SES console (SMTP settings, Create SMTP credentials) for the region of the endpoint, and sign in with that SMTP user name and password.",
			FixGo:    "Use submit.PasswordAuth with the SMTP user name and SMTP password that SES generated for this region, not the IAM access key pair.",
			FixCLI:   "Run with -user set to the SES SMTP user name and -password-env VAR holding the SES SMTP password for this region.",
			Docs:     "https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html",
		},
	},
	{
		from: ses, need: ownHost, codes: []int{530},
		all: []string{"authentication required"},
		advice: ProviderAdvice{
			Provider: ses.name,
			ID:       "ses-auth-required",
			Cause:    "The client started a message without signing in, and Amazon SES accepts mail only from signed-in SMTP users.",
			Fix:      "Configure the SES SMTP user name and password so the client signs in before sending.",
			FixGo:    "Set Dialer.Auth to submit.PasswordAuth with the SES SMTP credentials; a nil Auth sends without signing in.",
			FixCLI:   "Run with -user set to the SES SMTP user name and -password-env VAR holding the SMTP password.",
			Docs:     "https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html",
			Reason:   ReasonAuthRequired,
		},
	},

	// SendGrid.
	{
		from: sendgrid, need: wording, codes: []int{535},
		all: []string{"basic authentication is not allowed with 2fa enabled"},
		advice: ProviderAdvice{
			Provider: sendgrid.name,
			ID:       "sendgrid-2fa-basic-auth",
			Cause:    "SendGrid refused the sign-in because two-factor authentication is on for this user, which rules out signing in over SMTP with the account's own user name and password.",
			Fix:      "Sign in with the user name apikey and a SendGrid API key as the password.",
			FixGo:    "Use submit.PasswordAuth(\"apikey\", key) with a SendGrid API key, not the account's user name and password.",
			FixCLI:   "Run with -user apikey and -password-env VAR holding a SendGrid API key.",
			Docs:     "https://sendgrid.com/docs/for-developers/sending-email/authentication/#basic-authentication",
		},
	},
	{
		from: sendgrid, need: wording, codes: []int{535},
		all: []string{"the provided authorization grant is invalid, expired, or revoked"},
		advice: ProviderAdvice{
			Provider: sendgrid.name,
			ID:       "sendgrid-key-invalid",
			Cause:    "SendGrid did not accept the API key given as the password: it was deleted or revoked, or it is not a whole key (an API key ID, or a key cut short when copied).",
			Fix:      "Create a new API key with the Mail Send permission (SendGrid shows it once, and it starts with SG.) and sign in with the user name apikey and that key.",
			FixGo:    "Use submit.PasswordAuth(\"apikey\", key) with a newly created API key that has the Mail Send permission.",
			FixCLI:   "Run with -user apikey and -password-env VAR holding a newly created API key with the Mail Send permission.",
			Docs:     "https://docs.sendgrid.com/for-developers/sending-email/getting-started-smtp",
		},
	},
	{
		from: sendgrid, need: wording, codes: []int{451},
		all: []string{"maximum credits exceeded"},
		advice: ProviderAdvice{
			Provider: sendgrid.name,
			ID:       "sendgrid-credits-exceeded",
			Cause:    "The SendGrid account has used every email credit of its plan, and SendGrid refuses to send until the credits renew (daily or monthly, by plan) or the plan is upgraded, so a quick retry only fails again.",
			Fix:      "Wait for the plan's credits to renew, or upgrade the plan.",
			Docs:     "https://sendgrid.com/docs/for-developers/sending-email/smtp-errors-and-troubleshooting/",
			Reason:   ReasonQuota,
		},
	},
	{
		from: sendgrid, need: ownHost, codes: []int{535},
		all: []string{"bad username / password"},
		advice: ProviderAdvice{
			Provider: sendgrid.name,
			ID:       "sendgrid-bad-credentials",
			Cause:    "SendGrid rejected the login: over SMTP the user name must be the literal word \"apikey\" and the password an API key with the Mail Send permission.",
			Fix:      "Sign in with the user name apikey and a SendGrid API key as the password.",
			FixGo:    "Use submit.PasswordAuth(\"apikey\", key) with a SendGrid API key.",
			FixCLI:   "Run with -user apikey and -password-env VAR holding the SendGrid API key.",
			Docs:     "https://docs.sendgrid.com/for-developers/sending-email/getting-started-smtp",
		},
	},
	{
		from: sendgrid, need: sign, codes: []int{550},
		all: []string{"does not match a verified sender identity"},
		advice: ProviderAdvice{
			Provider: sendgrid.name,
			ID:       "sendgrid-sender-identity",
			Cause:    "SendGrid refused the message because its sender address is neither a verified single sender nor on an authenticated domain of the account.",
			Fix:      "Verify the sender address (or authenticate its domain) in SendGrid, or send from an address that is already verified.",
			Docs:     "https://sendgrid.com/docs/for-developers/sending-email/sender-identity/",
			Reason:   ReasonSender,
		},
	},

	// Mailgun.
	{from: mailgun, need: wording, codes: []int{535}, all: []string{"mailgun is not loving your login or password"}, advice: mailgunBadCredentials},
	{from: mailgun, need: ownHost, codes: []int{535}, advice: mailgunBadCredentials},
	{
		from: mailgun, need: wording, codes: []int{421, 554},
		all: []string{"sandbox subdomains are for test purposes only"},
		advice: ProviderAdvice{
			Provider: mailgun.name,
			ID:       "mailgun-sandbox-recipient",
			Cause:    "The message goes out through a Mailgun sandbox domain, which delivers only to the account's authorised recipients, and Mailgun refuses it for anyone else however often it is retried, although 421 reads as temporary.",
			Fix:      "Add the recipient to the authorised recipients of the sandbox domain (the recipient must confirm), or add and verify a domain of your own in Mailgun and send through it.",
			Docs:     "https://help.mailgun.com/hc/en-us/articles/217531258-Authorized-Recipients",
			Reason:   ReasonAccount,
			Retry:    RetryNever,
		},
	},

	// GMX and WEB.DE (one platform).
	{
		from: gmx, need: wording, codes: []int{550},
		all: []string{"requested action not taken: mailbox unavailable", "failure sending mail. try again later"},
		advice: ProviderAdvice{
			Provider: gmx.name,
			ID:       "gmx-rate-limit",
			Cause:    "GMX (and WEB.DE) limits how many messages an account may send in a period and refuses more with this 550 until the period has passed, although 550 reads as permanent; the recipients are not at fault.",
			Fix:      "Wait half an hour or so before sending again, and send fewer messages at a time.",
			FixGo:    "Retry later (the error is temporary) and space messages with Mailer.RateLimit.",
			Docs:     "https://support.gmx.com/email/composing-and-sending/bounce-reject.html",
			Reason:   ReasonRateLimited,
			Retry:    RetryLater,
		},
	},

	// maddy answers a wrong password with go-smtp's 454 4.7.0 for any
	// error that is not an SMTP reply.
	{
		from: maddy, need: wording, codes: []int{454}, enhanced: []string{"4.7.0"},
		all: []string{"auth: invalid credentials"},
		advice: ProviderAdvice{
			Provider: maddy.name,
			ID:       "maddy-invalid-credentials",
			Cause:    "The server (maddy) rejected the user name or password, and says so with the code 454, which reads as temporary.",
			Fix:      "Check the user name (usually the full address) and the password; trying again with the same credential will not help.",
			FixGo:    "Check the user name and password given to submit.PasswordAuth; a Dial with the same credential will not succeed later.",
			FixCLI:   "Check -user and the password in the -password-env variable; running again with the same credential will not help.",
			Docs:     "https://github.com/foxcpp/maddy/blob/03d9e526270499539e5aa0dba4b78a39c040fb31/internal/auth/sasl.go",
			Reason:   ReasonCredential,
			Retry:    RetryNever,
		},
	},

	// Postmark.
	{
		from: postmark, need: ownHost, codes: []int{535},
		advice: ProviderAdvice{
			Provider: postmark.name,
			ID:       "postmark-bad-credentials",
			Cause:    "Postmark rejected the login: with a Server API token the same token is both the user name and the password (an Account API token does not work), and an SMTP token signs in with its access key and secret key.",
			Fix:      "Sign in with the server's API token as both user name and password, or with an SMTP token's access key and secret key.",
			FixGo:    "Use submit.PasswordAuth(serverToken, serverToken), or the SMTP token's access key and secret key.",
			FixCLI:   "Run with -user set to the Server API token and -password-env VAR holding the same token.",
			Docs:     "https://postmarkapp.com/developer/user-guide/send-email-with-smtp",
		},
	},

	// Zoho Mail.
	{
		from: zoho, need: ownHost, codes: []int{535},
		all: []string{"authentication failed"},
		advice: ProviderAdvice{
			Provider: zoho.name,
			ID:       "zoho-auth-failed",
			Cause:    "Zoho rejected the login, usually because the account has two-factor authentication on and needs an application-specific password, or because the host is not the one of the account's data centre (smtp.zoho.eu for EU accounts, smtp.zoho.in for India and so on).",
			Fix:      "Generate an application-specific password in Zoho's security settings, sign in with it, and connect to the SMTP host of the account's region.",
			FixGo:    "Use submit.PasswordAuth(address, applicationSpecificPassword) and dial the Zoho host of the account's region.",
			FixCLI:   "Put an application-specific password in the variable named by -password-env and use the Zoho host of the account's region.",
			Docs:     "https://www.zoho.com/mail/help/zoho-smtp.html",
		},
	},
	{
		from: zoho, need: ownHost, codes: []int{553},
		all:    []string{"relaying disallowed"},
		advice: zohoRelaying,
	},
	{
		// Zoho names the refused sender: "553 Relaying disallowed as x@y".
		from: zoho, need: wording, codes: []int{553}, enhanced: []string{""},
		all:    []string{"relaying disallowed as "},
		advice: zohoRelaying,
	},

	// Fastmail.
	{
		from: fastmail, need: ownHost, codes: []int{535},
		advice: ProviderAdvice{
			Provider: fastmail.name,
			ID:       "fastmail-app-password-required",
			Cause:    "Fastmail refused the sign-in, and it accepts from other mail programs only an app password, never the account's login password.",
			Fix:      "Create an app password with mail (SMTP) access in Fastmail's Privacy & Security settings and sign in with it.",
			FixGo:    "Use submit.PasswordAuth(address, appPassword) with a Fastmail app password.",
			FixCLI:   "Put a Fastmail app password in the variable named by -password-env.",
			Docs:     "https://www.fastmail.com/help/clients/apppassword.html",
		},
	},
}

var zohoRelaying = ProviderAdvice{
	Provider: zoho.name,
	ID:       "zoho-relaying-disallowed",
	Cause:    "Zoho refused the sender address because it sends only as the signed-in account's address or one of its verified aliases or domains.",
	Fix:      "Send from the Zoho account's address, or add the sender address as a verified alias in Zoho Mail first.",
	FixGo:    "Make the envelope sender and the From header the Zoho address you authenticate as, or one of its verified aliases.",
	FixCLI:   "Give -from the address given to -user, or one of its verified aliases.",
	Docs:     "https://www.zoho.com/mail/help/zoho-smtp.html",
	Reason:   ReasonSender,
}
