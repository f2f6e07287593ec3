package mailjob_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portwise/portwise/examples/river/mailjob"
)

// TestRedactDSN masks the password in every form a PostgreSQL DSN can hold
// one, and leaves the rest readable.
func TestRedactDSN(t *testing.T) {
	tests := []struct {
		name, dsn, want string
		secrets         []string // none of which may remain
	}{
		{"URL user information", "postgres://mail:s3cret@db.example.com:5432/queue?sslmode=disable",
			"postgres://mail:xxxxx@db.example.com:5432/queue?sslmode=disable", []string{"s3cret"}},
		{"postgresql scheme, several hosts", "postgresql://mail:s3cret@db1:5432,db2:5433/queue",
			"postgresql://mail:xxxxx@db1:5432,db2:5433/queue", []string{"s3cret"}},
		{"percent-encoded password", "postgres://mail:p%40ss%20word@db/queue",
			"postgres://mail:xxxxx@db/queue", []string{"p%40ss%20word", "p@ss word"}},
		{"unencoded @ in the password masks more, never less", "postgres://mail:p@ss@db/queue",
			"postgres://mail:xxxxx@db/queue", []string{"p@ss", "ss@db"}},
		{"user without password", "postgres://mail@db/queue", "postgres://mail@db/queue", nil},
		{"?password= query", "postgres://mail@db/queue?password=s3cret",
			"postgres://mail@db/queue?password=xxxxx", []string{"s3cret"}},
		{"&password= query after others", "postgres://db/queue?sslmode=require&password=s3cret&application_name=mw",
			"postgres://db/queue?sslmode=require&password=xxxxx&application_name=mw", []string{"s3cret"}},
		{"sslpassword query", "postgres://db/queue?sslpassword=k3ypass", "postgres://db/queue?sslpassword=xxxxx", []string{"k3ypass"}},
		{"encoded query key and value", "postgres://db/queue?pass%77ord=s3cr%65t", "postgres://db/queue?pass%77ord=xxxxx", []string{"s3cr%65t", "s3cret"}},
		{"query and user information both", "postgres://mail:one1@db/q?password=two2#frag",
			"postgres://mail:xxxxx@db/q?password=xxxxx#frag", []string{"one1", "two2"}},
		{"keyword/value", "host=db user=mail password=s3cret dbname=queue",
			"host=db user=mail password=xxxxx dbname=queue", []string{"s3cret"}},
		{"keyword/value, spaces around =", "host=db password = s3cret dbname=queue",
			"host=db password = xxxxx dbname=queue", []string{"s3cret"}},
		{"keyword/value, quoted with spaces", "host=db password='my s3cret phrase' dbname=queue",
			"host=db password=xxxxx dbname=queue", []string{"my s3cret phrase", "s3cret", "phrase"}},
		{"keyword/value, quoted with escapes", `host=db password='it\'s a \\s3cret' dbname=queue`,
			"host=db password=xxxxx dbname=queue", []string{"it's", "s3cret"}},
		{"keyword/value, escaped space unquoted", `password=my\ s3cret host=db`,
			"password=xxxxx host=db", []string{"s3cret"}},
		{"keyword/value, unterminated quote masks to the end", "host=db password='s3cret dbname=queue",
			"host=db password=xxxxx", []string{"s3cret", "queue"}},
		{"keyword/value, sslpassword and tabs", "host=db\tsslpassword=k3ypass\tuser=mail",
			"host=db\tsslpassword=xxxxx\tuser=mail", []string{"k3ypass"}},
		{"keyword/value, password first and last", "password=a1b2c3", "password=xxxxx", []string{"a1b2c3"}},
		{"SQLite, nothing to mask", "sqlite:mailqueue.db", "sqlite:mailqueue.db", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mailjob.RedactDSN(tt.dsn)
			if got != tt.want {
				t.Errorf("RedactDSN(%q) = %q, want %q", tt.dsn, got, tt.want)
			}
			for _, s := range tt.secrets {
				if strings.Contains(got, s) {
					t.Errorf("RedactDSN(%q) = %q shows %q", tt.dsn, got, s)
				}
			}
		})
	}
}

// TestOpenErrorsHideThePassword: the errors of DSNs that pgx cannot parse,
// and of a server that cannot be reached, in each form, quote no password.
func TestOpenErrorsHideThePassword(t *testing.T) {
	const secret = "Pw0rd-s3cret"
	tests := []struct{ name, dsn string }{
		{"URL with a bad port", "postgres://mail:" + secret + "@127.0.0.1:notaport/queue"},
		{"URL with a bad query", "postgres://mail:" + secret + "@127.0.0.1/queue?sslmode=bogus"},
		{"URL, password in the query, bad port", "postgres://mail@127.0.0.1:99999/queue?password=" + secret},
		{"keyword/value, unterminated quote", "host=127.0.0.1 user=mail password='" + secret},
		{"keyword/value, quoted with spaces, bad option", "host=127.0.0.1 password='a " + secret + "' sslmode=bogus"},
		// pgx's own masking stops at the escaped quote and would show
		// the rest of the password.
		{"keyword/value, escaped quote, bad option", `host=127.0.0.1 password='it\'s ` + secret + `' sslmode=bogus`},
		{"keyword/value, nothing listening", "host=127.0.0.1 port=1 user=mail password=" + secret + " dbname=queue connect_timeout=2"},
		{"URL, nothing listening", "postgres://mail:" + secret + "@127.0.0.1:1/queue?connect_timeout=2"},
		{"not a DSN at all", "mysql://mail:" + secret + "@db/queue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			q, err := mailjob.Open(ctx, tt.dsn, "")
			if err == nil {
				q.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the password: %v", err)
			}
			t.Logf("%v", err)
		})
	}
}
