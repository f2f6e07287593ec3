package diag

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// record is one reply of testdata/providers, with where it came from.
type record struct {
	file, source, host, want string
	line                     int // of the record's first line
	wire                     []string
	// step is the command the reply answered; kind, reason and
	// temporary what Classify must find at that step ("" for any).
	step, kind, reason, temporary string
}

// readRecords parses testdata/providers/*.txt (see the README there).
func readRecords(t *testing.T) []record {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "providers", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no replay data: %v", err)
	}
	var recs []record
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		var cur *record
		flush := func() {
			if cur != nil {
				recs = append(recs, *cur)
				cur = nil
			}
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case strings.TrimSpace(line) == "":
				flush()
				continue
			case strings.HasPrefix(line, "#"):
				continue
			}
			if cur == nil {
				cur = &record{file: filepath.Base(name), line: n}
			}
			key, val, _ := strings.Cut(line, ":")
			switch {
			case replyLine.MatchString(line):
				cur.wire = append(cur.wire, line)
			case key == "source":
				cur.source = strings.TrimSpace(val)
			case key == "host":
				cur.host = strings.TrimSpace(val)
			case key == "want":
				cur.want = strings.TrimSpace(val)
			case key == "step":
				cur.step = strings.TrimSpace(val)
			case key == "kind":
				cur.kind = strings.TrimSpace(val)
			case key == "reason":
				cur.reason = strings.TrimSpace(val)
			case key == "temporary":
				cur.temporary = strings.TrimSpace(val)
			case key == "note":
			default:
				t.Fatalf("%s:%d: unknown line %q", name, n, line)
			}
		}
		flush()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return recs
}

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9]([ -]|$)`)

// split turns wire lines into what MatchProvider takes, the way
// internal/wire does it: the text is the lines after their codes joined by
// newlines, and a leading enhanced code of the reply's class is taken out
// of the first line and of continuation lines that repeat it.
func split(t *testing.T, wire []string) (code int, enhanced, text string) {
	t.Helper()
	var lines []string
	for i, l := range wire {
		c, err := strconv.Atoi(l[:3])
		if err != nil || i > 0 && c != code {
			t.Fatalf("bad reply line %q", l)
		}
		code = c
		if len(l) > 4 {
			lines = append(lines, l[4:])
		} else {
			lines = append(lines, "")
		}
	}
	text = strings.Join(lines, "\n")
	first, rest, ok := strings.Cut(text, " ")
	if ok && enhancedCode.MatchString(first) && first[0] == byte('0'+code/100) {
		return code, first, strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	}
	return code, "", text
}

var enhancedCode = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)

// TestReplayProviderReplies replays every captured reply through
// MatchProvider and checks the advice it gets.
func TestReplayProviderReplies(t *testing.T) {
	for _, rec := range readRecords(t) {
		t.Run(rec.file+":"+strconv.Itoa(rec.line), func(t *testing.T) {
			if !strings.HasPrefix(rec.source, "https://") {
				t.Fatalf("record without a source URL")
			}
			if rec.want == "" || len(rec.wire) == 0 {
				t.Fatalf("record needs a want line and a reply")
			}
			code, enhanced, text := split(t, rec.wire)
			adv, ok := MatchProvider(rec.host, code, enhanced, text)
			got := "-"
			if ok {
				got = adv.ID
			}
			if got != rec.want {
				t.Errorf("MatchProvider(%q, %d, %q, %q) = %s, want %s (source %s)",
					rec.host, code, enhanced, text, got, rec.want, rec.source)
			}
		})
	}
}

// TestEveryAdviceIsReplayed makes sure no advice goes untested against a
// real reply.
func TestEveryAdviceIsReplayed(t *testing.T) {
	wanted := map[string]bool{}
	for _, rec := range readRecords(t) {
		wanted[rec.want] = true
	}
	for _, ru := range rules {
		if !wanted[ru.advice.ID] {
			t.Errorf("advice %s has no reply in testdata/providers", ru.advice.ID)
		}
	}
}

// TestAdviceIsComplete checks the promises of ProviderAdvice's fields.
func TestAdviceIsComplete(t *testing.T) {
	id := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)+$`)
	goOrCLI := regexp.MustCompile(`submit\.|Dialer|(^|\s)-[a-z]`)
	byID := map[string]ProviderAdvice{}
	for _, ru := range rules {
		a := ru.advice
		t.Run(a.ID, func(t *testing.T) {
			if prev, ok := byID[a.ID]; ok && prev != a {
				t.Errorf("two different advices share the ID %s", a.ID)
			}
			byID[a.ID] = a
			if !id.MatchString(a.ID) {
				t.Errorf("ID %q is not a short lower-case id", a.ID)
			}
			if a.Provider == "" || a.Cause == "" || a.Fix == "" {
				t.Errorf("empty Provider, Cause or Fix: %+v", a)
			}
			if !strings.HasPrefix(a.Docs, "https://") {
				t.Errorf("Docs %q is not an https URL", a.Docs)
			}
			for name, s := range map[string]string{"Cause": a.Cause, "Fix": a.Fix, "FixGo": a.FixGo, "FixCLI": a.FixCLI} {
				if s != "" && (!strings.HasSuffix(s, ".") || strings.Contains(strings.TrimSuffix(s, "."), ". ")) {
					t.Errorf("%s is not one sentence: %q", name, s)
				}
			}
			if goOrCLI.MatchString(a.Fix) {
				t.Errorf("Fix names Go or CLI things: %q", a.Fix)
			}
			if a.FixGo != "" && a.FixGo == a.Fix || a.FixCLI != "" && a.FixCLI == a.Fix {
				t.Errorf("FixGo or FixCLI repeats Fix; leave it empty")
			}
		})
	}
}

// TestNoMatchOnGenericReplies covers replies that must never produce
// provider advice, however the caller passes them.
func TestNoMatchOnGenericReplies(t *testing.T) {
	tests := []struct {
		name, host string
		code       int
		enhanced   string
		text       string
	}{
		// https://github.com/nextcloud/helm/issues/254 (Postfix + Dovecot),
		// passed with a provider's host: the host alone proves nothing when
		// the wording is not the provider's.
		{"Postfix auth failure from Gmail's host", "smtp.gmail.com", 535, "5.7.8", "Error: authentication failed: UGFzc3dvcmQ6"},
		{"Postfix auth failure from Microsoft's host", "smtp.office365.com", 535, "5.7.8", "Error: authentication failed: UGFzc3dvcmQ6"},
		// The brief's example of a generic Postfix reply.
		{"Postfix auth failure", "", 535, "5.7.8", "Error: authentication failed: authentication failure"},
		// https://github.com/emersion/go-smtp/issues/86: a success is never
		// a problem, even with a wording rule's host.
		{"success from SES's host", "email-smtp.us-east-1.amazonaws.com", 250, "", "Ok"},
		// https://github.com/namshi/docker-smtp/issues/85
		{"generic 550 from Yahoo's host", "smtp.mail.yahoo.com", 550, "", "relay not permitted"},
		{"generic 550", "", 550, "5.1.1", "relay not permitted"},
		// Host look-alikes are not the provider's hosts.
		{"SES look-alike host", "email-smtp.example.amazonaws.com.evil.test", 535, "", "Authentication Credentials Invalid"},
		{"SES host with extra label", "email-smtp.a.b.amazonaws.com", 535, "", "Authentication Credentials Invalid"},
		{"Zoho look-alike host", "smtp.zoho.com.evil.test", 535, "", "Authentication Failed"},
		{"empty reply", "", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if adv, ok := MatchProvider(tt.host, tt.code, tt.enhanced, tt.text); ok {
				t.Errorf("MatchProvider(%q, %d, %q, %q) = %s, want no match", tt.host, tt.code, tt.enhanced, tt.text, adv.ID)
			}
		})
	}
}

// TestMatchProviderInputs covers the forms a caller may pass the same reply
// in.
func TestMatchProviderInputs(t *testing.T) {
	// https://github.com/yiisoft/yii2-symfonymailer/issues/32
	const ses = "Authentication Credentials Invalid"
	tests := []struct {
		name, host string
		code       int
		enhanced   string
		text       string
		want       string
	}{
		{"host with port", "email-smtp.ap-southeast-1.amazonaws.com:587", 535, "", ses, "ses-smtp-credentials-invalid"},
		{"host in capitals with a trailing dot", "EMAIL-SMTP.AP-SOUTHEAST-1.AMAZONAWS.COM.", 535, "", ses, "ses-smtp-credentials-invalid"},
		{"FIPS endpoint", "email-smtp-fips.us-east-1.amazonaws.com", 535, "", ses, "ses-smtp-credentials-invalid"},
		// https://github.com/nodemailer/nodemailer/issues/1714
		{"enhanced code left in the text", "", 535, "", "5.7.139 Authentication unsuccessful, basic authentication is disabled. [PN0PR01CA0024.INDPRD01.PROD.OUTLOOK.COM]", "m365-basic-auth-disabled"},
		{"text in other case and spacing", "", 535, "5.7.139", "AUTHENTICATION UNSUCCESSFUL,  basic\nauthentication   is disabled.", "m365-basic-auth-disabled"},
		// https://github.com/mattermost/mattermost/issues/13224
		{"Zoho regional host", "smtppro.zoho.com.au", 553, "", "Relaying disallowed as @", "zoho-relaying-disallowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adv, ok := MatchProvider(tt.host, tt.code, tt.enhanced, tt.text)
			if !ok || adv.ID != tt.want {
				t.Errorf("MatchProvider(%q, %d, %q, %q) = %q, %v, want %s", tt.host, tt.code, tt.enhanced, tt.text, adv.ID, ok, tt.want)
			}
		})
	}
}
