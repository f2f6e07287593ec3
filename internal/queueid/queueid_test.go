package queueid

import (
	"strings"
	"testing"
)

// Each reply is the text after the code, as the server sent it, with the
// public capture or source it comes from.
func TestParseRealReplies(t *testing.T) {
	tests := []struct {
		server, text, want, source string
	}{
		{"Postfix", "2.0.0 Ok: queued as 224B824BD40", "224B824BD40",
			"https://github.com/stalwartlabs/mail-send/issues/24"},
		{"Postfix (BillionMail), via Nodemailer", "2.0.0 Ok: queued as 3CB2B113CB6", "3CB2B113CB6",
			"https://github.com/Billionmail/BillionMail/issues/156"},
		{"SendGrid", "Ok: queued as nhIMmON9SFOPcT0ii4nt2A", "nhIMmON9SFOPcT0ii4nt2A",
			"https://github.com/sendgrid/docs/issues/2638"},
		// Captured from Mailpit v1.33.1 on loopback; the reply is written at
		// internal/smtpd/smtpd.go:608 of commit 408b30d.
		{"Mailpit", "2.0.0 Ok: queued as 0FCvkK4mqMK6VLcOtGCc8s", "0FCvkK4mqMK6VLcOtGCc8s",
			"https://github.com/axllent/mailpit/blob/408b30d59709e3f2ed69c7748d900a2208cfbf9b/internal/smtpd/smtpd.go#L608"},
		{"Yandex", "2.0.0 Ok: queued on smtp3m.mail.yandex.net as 1430081058-6ltgNFKSir-iHEKdOrm", "1430081058-6ltgNFKSir-iHEKdOrm",
			"https://github.com/nodemailer/nodemailer/issues/422"},
		// Exim's test suite normalises ids (10HmaX-…) but keeps their shape:
		// 6-6-2 before Exim 4.97, 6-11-4 from 4.97 on.
		{"Exim before 4.97", "OK id=10HmaX-0005vi-00", "10HmaX-0005vi-00",
			"https://git.exim.org/users/jgh/exim.git/blobdiff/58eb016e585187a87ade7602b2aecb2208605320..67794d2b830fc580f87b0635718d95e32b467be1:/test/stdout/0300"},
		{"Exim 4.97+", "OK id=10HmaX-000000005vi-0000", "10HmaX-000000005vi-0000",
			"https://git.exim.org/exim.git/blob/46ad960434683b3e15eb17edf3b2d748c191fbc4:/test/stdout/4002"},
		// Postfix log of a delivery to GMX's MX, quoting its reply.
		{"GMX", "Requested mail action okay, completed: id=1M7usq-1u0N2z0f1m-0050HD", "1M7usq-1u0N2z0f1m-0050HD",
			"https://github.com/mailcow/mailcow-dockerized/issues/6486"},
		// Postfix log of a relay through sendmail, quoting its reply.
		{"sendmail, split envelope", "2.0.0 t5UI2nBt018923-t5UI2nBw018923 Message accepted for delivery", "t5UI2nBt018923-t5UI2nBw018923",
			"https://github.com/msimerson/postfix-parser/blob/master/README.md"},
		{"Gmail", "2.0.0 OK  1571601091 d44si1315748ede.149 - gsmtp", "d44si1315748ede.149",
			"https://github.com/emersion/go-smtp/issues/86"},
		{"Gmail, longer id", "2.0.0 OK  1731389794 ffacd0b85a97d-381ed975a54si7856017f8f.119 - gsmtp", "ffacd0b85a97d-381ed975a54si7856017f8f.119",
			"https://github.com/stalwartlabs/stalwart/issues/927"},
		{"Gmail, no timestamp (2016)", "2.0.0 OK h5sm23980368wjn.20 - gsmtp", "h5sm23980368wjn.20",
			"https://github.com/kisli/vmime/issues/110"},
		{"Haraka", "Message Queued (51DE505A-C5B4-4ED3-9FA0-45ED43F49E96.1)", "51DE505A-C5B4-4ED3-9FA0-45ED43F49E96.1",
			"https://github.com/haraka/Haraka/issues/408"},
		{"Haraka 2.7, uuid doubled", "Message Queued (9E4BCB7C-6006-451E-BA1D-7F80FCABBE72.1) (9E4BCB7C-6006-451E-BA1D-7F80FCABBE72.1)", "9E4BCB7C-6006-451E-BA1D-7F80FCABBE72.1",
			"https://github.com/haraka/Haraka/pull/1092"},
		// Postfix log of a relay through SES, quoting its reply.
		{"Amazon SES", "Ok 01000154dc729264-93fdd7ea-f039-43d6-91ed-653e8547867c-000000", "01000154dc729264-93fdd7ea-f039-43d6-91ed-653e8547867c-000000",
			"https://github.com/docker-mailserver/docker-mailserver/blob/master/docs/content/config/advanced/mail-forwarding/aws-ses.md"},
		// Postfix log of a delivery to Outlook.com's MX; Postfix appends
		// " -> 250 2.1.5" (the RCPT reply), which is not part of the text.
		{"Exchange Online Protection", "2.6.0 <985B9AFD-01C2-E94D-AE29-8332E13E0F18@hxcore.ol> [InternalId=27685359203242, Hostname=DU0P195MB1547.EURP195.PROD.OUTLOOK.COM] 3731117 bytes in 0.264, 13797.491 KB/sec Queued mail for delivery", "27685359203242",
			"https://github.com/mailcow/mailcow-dockerized/issues/6486"},

		// Replies that carry no queue id.
		{"Microsoft 365 submission (echoes the Message-ID)", "2.0.0 OK <0a9f3eef-1c74-140d-f3ba-7c25c5049f60@riskpro.in> [Hostname=PS2PR06MB3510.apcprd06.prod.outlook.com]", "",
			"https://github.com/Youans/nodejs-nodemailer-outlook/issues/8"},
		{"go-smtp default (maddy)", "2.0.0 OK: queued", "",
			"https://github.com/emersion/go-smtp/blob/v0.25.1/conn.go#L1270"},
		{"Mailgun", "Great success", "",
			"https://github.com/PHPMailer/PHPMailer/issues/1253"},
		{"chasquid", "2.0.0 You offer the Amulet of Yendor to Anhur...", "",
			"https://github.com/albertito/chasquid/blob/ca2538b9745a448170dbd078c65b97c8821c33f9/internal/smtpsrv/conn.go#L731"},
		{"chasquid", "2.0.0 In return to thy service, I grant thee the gift of Immortality!", "",
			"https://github.com/albertito/chasquid/blob/ca2538b9745a448170dbd078c65b97c8821c33f9/internal/smtpsrv/conn.go#L734"},
		{"aiosmtpd", "OK", "",
			"https://github.com/aio-libs/aiosmtpd/blob/44c0159d77719ffc38696f166b49c5edc013560a/aiosmtpd/smtp.py#L1542"},
		{"Nodemailer smtp-server", "OK: message queued", "",
			"https://github.com/nodemailer/smtp-server/issues/130"},
		{"Nodemailer smtp-server, 2015", "Message queued", "",
			"https://github.com/nodemailer/smtp-server/issues/23"},
		{"Haraka, 2011", "Message Queued", "",
			"https://github.com/haraka/Haraka/issues/22"},
		{"Stalwart", "2.0.0 Message queued for delivery.", "",
			"https://github.com/stalwartlabs/stalwart/issues/927"},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			if tt.source == "" {
				t.Fatal("every reply needs a source")
			}
			if got := Parse(tt.text); got != tt.want {
				t.Errorf("Parse(%q) = %q, want %q (source %s)", tt.text, got, tt.want, tt.source)
			}
			// The same text without its enhanced status code.
			if _, rest, ok := strings.Cut(tt.text, " "); ok && enhanced.MatchString(tt.text) {
				if got := Parse(rest); got != tt.want {
					t.Errorf("Parse(%q) = %q, want %q", rest, got, tt.want)
				}
			}
		})
	}
}

// Bounds on what a hostile or broken server can make Parse return; these
// texts are made up, not captured.
func TestParseBounds(t *testing.T) {
	long := strings.Repeat("A", MaxLen+1)
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", ""},
		{"only an enhanced code", "2.0.0", ""},
		{"id at the limit", "2.0.0 Ok: queued as " + strings.Repeat("A", MaxLen), strings.Repeat("A", MaxLen)},
		{"id over the limit", "2.0.0 Ok: queued as " + long, ""},
		{"exim id over the limit", "OK id=" + long, ""},
		{"nothing after queued as", "2.0.0 Ok: queued as ", ""},
		{"id stops at a space", "2.0.0 Ok: queued as 4F2A1 (more text)", "4F2A1"},
		{"id stops at a non-ASCII byte", "Ok: queued as 4F2A1\u00e9", "4F2A1"},
		{"id= inside a word is not Exim's", "[InternalXid=1]", ""},
		{"Gmail shape without gsmtp", "2.0.0 OK  1571601091 d44si1315748ede.149", ""},
		{"SES shape that is not an SES id", "Ok 123", ""},
		{"leading and trailing space", "  2.0.0 Ok: queued as 4F2A1  ", "4F2A1"},
		{"multi-line reply", "2.0.0 Ok\nqueued as 4F2A1", "4F2A1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse(tt.text)
			if got != tt.want {
				t.Errorf("Parse(%q) = %q, want %q", tt.text, got, tt.want)
			}
			if len(got) > MaxLen || strings.ContainsAny(got, " \t\r\n") {
				t.Errorf("Parse(%q) = %q: not a bounded token", tt.text, got)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("2.0.0 Ok: queued as 4F2A1")
	f.Add("OK id=1l3vRq-0000HP-OZ")
	f.Add("2.0.0 OK  1571601091 d44si1315748ede.149 - gsmtp")
	f.Fuzz(func(t *testing.T, text string) {
		id := Parse(text)
		if id != "" && !valid(id) {
			t.Fatalf("Parse(%q) = %q, not a valid id", text, id)
		}
	})
}
