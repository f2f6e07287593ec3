package discover

import (
	"slices"
	"strings"

	"github.com/portwise/portwise/tlsmode"
)

// AuthKind names the credential a provider expects on its submission
// servers.
type AuthKind string

// The credentials providers expect.
const (
	// AuthAppPassword is a password generated for one application in the
	// account's security settings (the account password is refused or
	// discouraged once two-step verification is on).
	AuthAppPassword AuthKind = "app-password"
	// AuthOAuth2 is an OAuth 2.0 access token sent with SASL XOAUTH2.
	AuthOAuth2 AuthKind = "xoauth2"
	// AuthSMTPCredentials is a user name and password made for SMTP in the
	// provider's console (Amazon SES, Mailgun).
	AuthSMTPCredentials AuthKind = "smtp-credentials"
	// AuthAPIKey is an API key sent as the password, usually with a fixed
	// user name (Provider.Username).
	AuthAPIKey AuthKind = "api-key"
)

// Provider is the submission setup a mail provider documents: its host, the
// ports with their modes in order of preference, and the credentials it
// expects. Providers are data; nothing here does I/O.
type Provider struct {
	// Name is a short human name, e.g. "Gmail".
	Name string
	// Host is the submission host. For Amazon SES it contains the
	// placeholder "REGION" (email-smtp.REGION.amazonaws.com).
	Host string
	// Candidates are the ports in the order to try them.
	Candidates []tlsmode.Candidate
	// Auth lists the credentials the provider accepts, preferred first.
	Auth []AuthKind
	// Username, when set, is the fixed user name to authenticate with
	// ("apikey" for SendGrid); otherwise the account's address or the
	// SMTP user name from the provider's console.
	Username string
	// Docs is the provider's documentation of these settings.
	Docs string

	// domains are email domains whose mail the provider hosts; hosts are
	// the submission host names it answers on; mx are suffixes of its MX
	// host names. A leading "." matches any subdomain.
	domains []string
	hosts   []string
	mx      []string
}

func starttls(p int) tlsmode.Candidate { return tlsmode.Candidate{Port: p, Mode: tlsmode.StartTLS} }
func implicit(p int) tlsmode.Candidate { return tlsmode.Candidate{Port: p, Mode: tlsmode.Implicit} }

// providers returns a fresh table, so callers cannot change another's copy
// and there is no package-level mutable state.
func providers() []Provider {
	return append(majorProviders(), otherMailboxes()...)
}

// majorProviders are the large mailbox providers and the sending services.
func majorProviders() []Provider {
	return []Provider{
		{
			// https://support.google.com/a/answer/176600
			// https://developers.google.com/gmail/imap/xoauth2-protocol
			Name:       "Gmail",
			Host:       "smtp.gmail.com",
			Candidates: []tlsmode.Candidate{starttls(587), implicit(465)},
			Auth:       []AuthKind{AuthOAuth2, AuthAppPassword},
			Docs:       "https://support.google.com/a/answer/176600",
			domains:    []string{"gmail.com", "googlemail.com"},
			hosts:      []string{"smtp.gmail.com", "smtp.googlemail.com"},
			mx:         []string{".google.com", ".googlemail.com"},
		},
		{
			// https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365
			Name:       "Microsoft 365",
			Host:       "smtp.office365.com",
			Candidates: []tlsmode.Candidate{starttls(587)},
			Auth:       []AuthKind{AuthOAuth2, AuthAppPassword},
			Docs:       "https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365",
			hosts:      []string{"smtp.office365.com"},
			mx:         []string{".mail.protection.outlook.com", ".protection.outlook.com"},
		},
		{
			// https://support.microsoft.com/en-us/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040
			Name:       "Outlook.com",
			Host:       "smtp-mail.outlook.com",
			Candidates: []tlsmode.Candidate{starttls(587)},
			Auth:       []AuthKind{AuthOAuth2, AuthAppPassword},
			Docs:       "https://support.microsoft.com/en-us/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040",
			domains:    []string{"outlook.com", "hotmail.com", "live.com", "msn.com"},
			hosts:      []string{"smtp-mail.outlook.com"},
		},
		{
			// https://docs.aws.amazon.com/ses/latest/dg/smtp-connect.html
			// 465 and 2465 are implicit TLS ("TLS Wrapper"); 25, 587 and
			// 2587 are STARTTLS. Many clouds block 25, so it comes last.
			Name:       "Amazon SES",
			Host:       "email-smtp.REGION.amazonaws.com",
			Candidates: []tlsmode.Candidate{starttls(587), implicit(465), starttls(2587), implicit(2465), starttls(25)},
			Auth:       []AuthKind{AuthSMTPCredentials},
			Docs:       "https://docs.aws.amazon.com/ses/latest/dg/smtp-connect.html",
		},
		{
			// https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api
			Name:       "SendGrid",
			Host:       "smtp.sendgrid.net",
			Candidates: []tlsmode.Candidate{starttls(587), implicit(465), starttls(2525)},
			Auth:       []AuthKind{AuthAPIKey},
			Username:   "apikey",
			Docs:       "https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api",
			hosts:      []string{"smtp.sendgrid.net"},
		},
		{
			// https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp
			Name:       "Mailgun",
			Host:       "smtp.mailgun.org",
			Candidates: []tlsmode.Candidate{starttls(587), implicit(465), starttls(2525)},
			Auth:       []AuthKind{AuthSMTPCredentials},
			Docs:       "https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp",
			hosts:      []string{"smtp.mailgun.org", "smtp.eu.mailgun.org"},
		},
		{
			// https://postmarkapp.com/developer/user-guide/send-email-with-smtp
			// The server API token is both the user name and the password.
			Name:       "Postmark",
			Host:       "smtp.postmarkapp.com",
			Candidates: []tlsmode.Candidate{starttls(587), starttls(2525), starttls(25)},
			Auth:       []AuthKind{AuthAPIKey},
			Docs:       "https://postmarkapp.com/developer/user-guide/send-email-with-smtp",
			hosts:      []string{"smtp.postmarkapp.com", "smtp-broadcasts.postmarkapp.com"},
		},
	}
}

// otherMailboxes are the smaller mailbox providers.
func otherMailboxes() []Provider {
	return []Provider{
		{
			// https://www.fastmail.help/hc/en-us/articles/1500000278342-Server-names-and-ports
			Name:       "Fastmail",
			Host:       "smtp.fastmail.com",
			Candidates: []tlsmode.Candidate{implicit(465), starttls(587)},
			Auth:       []AuthKind{AuthAppPassword, AuthOAuth2},
			Docs:       "https://www.fastmail.help/hc/en-us/articles/1500000278342-Server-names-and-ports",
			domains:    []string{"fastmail.com", "fastmail.fm"},
			hosts:      []string{"smtp.fastmail.com"},
			mx:         []string{".messagingengine.com"},
		},
		{
			// https://support.apple.com/en-us/102525
			Name:       "iCloud",
			Host:       "smtp.mail.me.com",
			Candidates: []tlsmode.Candidate{starttls(587)},
			Auth:       []AuthKind{AuthAppPassword},
			Docs:       "https://support.apple.com/en-us/102525",
			domains:    []string{"icloud.com", "me.com", "mac.com"},
			hosts:      []string{"smtp.mail.me.com"},
			mx:         []string{".mail.icloud.com"},
		},
		{
			// https://www.zoho.com/mail/help/zoho-smtp.html
			Name:       "Zoho Mail",
			Host:       "smtp.zoho.com",
			Candidates: []tlsmode.Candidate{implicit(465), starttls(587)},
			Auth:       []AuthKind{AuthAppPassword, AuthOAuth2},
			Docs:       "https://www.zoho.com/mail/help/zoho-smtp.html",
			domains:    []string{"zoho.com", "zohomail.com"},
			hosts:      []string{"smtp.zoho.com", "smtp.zoho.eu", "smtppro.zoho.com", "smtppro.zoho.eu"},
		},
		{
			// https://help.yahoo.com/kb/SLN4724.html
			Name:       "Yahoo Mail",
			Host:       "smtp.mail.yahoo.com",
			Candidates: []tlsmode.Candidate{implicit(465), starttls(587)},
			Auth:       []AuthKind{AuthAppPassword, AuthOAuth2},
			Docs:       "https://help.yahoo.com/kb/SLN4724.html",
			domains:    []string{"yahoo.com", "ymail.com", "rocketmail.com"},
			hosts:      []string{"smtp.mail.yahoo.com"},
			mx:         []string{".yahoodns.net"},
		},
	}
}

// Providers returns the built-in provider presets. Each call returns a
// fresh slice the caller may modify.
func Providers() []Provider { return providers() }

func normalise(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// matches reports whether name equals a pattern, or lies under a pattern
// that starts with ".".
func matches(name string, patterns []string) bool {
	for _, p := range patterns {
		if name == p || strings.HasPrefix(p, ".") && strings.HasSuffix(name, p) {
			return true
		}
	}
	return false
}

func isSES(host string) bool {
	region, ok := strings.CutPrefix(host, "email-smtp.")
	if !ok {
		return false
	}
	region, ok = strings.CutSuffix(region, ".amazonaws.com")
	return ok && region != "" && !strings.Contains(region, ".")
}

// ProviderForHost returns the preset of a submission host name, e.g.
// "smtp.gmail.com" or "email-smtp.eu-west-1.amazonaws.com". The returned
// Provider's Host is host itself (lower-cased).
func ProviderForHost(host string) (Provider, bool) {
	h := normalise(host)
	for _, p := range providers() {
		if matches(h, p.hosts) || p.Name == "Amazon SES" && isSES(h) {
			p.Host = h
			return p, true
		}
	}
	return Provider{}, false
}

// ProviderForDomain returns the preset of a provider that hosts mail for an
// email domain, e.g. "gmail.com" or "icloud.com". Domains that merely use
// a provider (Google Workspace, Microsoft 365) are found through their MX
// records with ProviderForMX.
func ProviderForDomain(domain string) (Provider, bool) {
	d := normalise(domain)
	for _, p := range providers() {
		if slices.Contains(p.domains, d) {
			return p, true
		}
	}
	return Provider{}, false
}

// ProviderForMX returns the preset of the provider whose inbound servers an
// MX host name belongs to: "aspmx.l.google.com" is Gmail (Google
// Workspace), "example-com.mail.protection.outlook.com" is Microsoft 365.
func ProviderForMX(mx string) (Provider, bool) {
	h := normalise(mx)
	for _, p := range providers() {
		if matches(h, p.mx) {
			return p, true
		}
	}
	return Provider{}, false
}
