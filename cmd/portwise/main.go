package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/tlsmode"
	"golang.org/x/oauth2"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// cli is the process environment a command runs in.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// colour reports whether stdout is a terminal that wants colour.
	colour bool
	// stdinTTY reports whether stdin is a terminal (send then uses a
	// default body rather than waiting for one).
	stdinTTY bool
	// width is how many columns -timing's view may take: COLUMNS, else the
	// terminal's, else (0) 80.
	width int
}

func main() {
	c := &cli{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		colour:   isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
		stdinTTY: isTerminal(os.Stdin),
		width:    columns(os.Getenv("COLUMNS"), os.Stdout),
	}
	os.Exit(c.run(os.Args[1:]))
}

// isTerminal reports whether f is a character device, without a
// dependency on a terminal package.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// columns is the width -timing fits: COLUMNS when it is a number (a shell
// sets it; a person can), else the width of the terminal f is, else 0.
func columns(env string, f *os.File) int {
	if n, err := strconv.Atoi(env); err == nil && n > 0 {
		return n
	}
	return terminalWidth(f)
}

const usage = `usage:
  portwise probe [-json] [-timing] [-timeout 10s] [-port 587,465/implicit] [-ca FILE] [-user U -password-env VAR] HOST
  portwise send -from A -to B [-subject S] [-body-file F] [-user U -password-env VAR | -xoauth2-token-env VAR] [-v] [-timing] [-json] HOST[:PORT]
  portwise version

Run "portwise probe -h" or "portwise send -h" for every flag.
`

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "probe":
		return c.probe(args[1:])
	case "send":
		return c.send(args[1:])
	case "version", "-version", "--version":
		fmt.Fprintln(c.stdout, version())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, usage)
		return exitOK
	}
	fmt.Fprintf(c.stderr, "portwise: unknown command %q\n%s", args[0], usage)
	return exitUsage
}

// usageError is a problem with the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exit prints err, in the words of the command line, and returns its exit
// code.
func (c *cli) exit(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(c.stderr, "portwise: "+describe(err))
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFail
}

// helpRequested reports the error of a flag set asked for -h: its usage
// is printed, and the command exits 0.
func helpRequested(err error) bool { return errors.Is(err, flag.ErrHelp) }

// version is the command's version from its build information: the module
// version when installed with go install, else the VCS revision.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "portwise (no build information)"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	out := "portwise " + v
	if rev != "" {
		out += " (" + rev[:min(12, len(rev))] + modified + ")"
	}
	return out + ", " + bi.GoVersion
}

// parse parses flags that may come before or after the positional
// arguments ("portwise probe HOST -json" works too).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// common holds the flags probe and send share.
type common struct {
	ports    string
	ca       string
	user     string
	passEnv  string
	tokenEnv string // send only: XOAUTH2 access token
	dns      string
	selected []tlsmode.Candidate
	tls      *tls.Config
	auth     submit.Auth
	resolver *net.Resolver // nil: the system's
}

func (o *common) register(fs *flag.FlagSet) {
	fs.StringVar(&o.ports, "port", "", "comma-separated ports to use, each `N or N/mode` (mode: starttls, implicit); default 587, 465, 2525 (and 25 for probe)")
	fs.StringVar(&o.ca, "ca", "", "PEM `file` of CA certificates to trust instead of the system roots")
	fs.StringVar(&o.user, "user", "", "user name for AUTH (needs -password-env)")
	fs.StringVar(&o.passEnv, "password-env", "", "name of the environment `variable` holding the password")
	fs.StringVar(&o.dns, "dns", "", "DNS server `host:port` to resolve names (and SRV records) with, instead of the system's")
}

// netDialer is the dialer the flags ask for: nil means submit's default.
func (o *common) netDialer() submit.ContextDialer {
	if o.resolver == nil {
		return nil
	}
	return &net.Dialer{Resolver: o.resolver}
}

// registerToken adds -xoauth2-token-env (send only).
func (o *common) registerToken(fs *flag.FlagSet) {
	fs.StringVar(&o.tokenEnv, "xoauth2-token-env", "", "name of the environment `variable` holding an OAuth2 access token: AUTH XOAUTH2 as -user instead of a password")
}

// resolve checks the shared flags and builds what they describe.
func (o *common) resolve(getenv func(string) string) error {
	if o.ports != "" {
		for _, p := range strings.Split(o.ports, ",") {
			cand, err := tlsmode.ParseCandidate(p)
			if err != nil {
				return usagef("-port: %v", err)
			}
			o.selected = append(o.selected, cand)
		}
	}
	if o.dns != "" {
		if _, _, err := net.SplitHostPort(o.dns); err != nil {
			return usagef("-dns: want host:port, e.g. 127.0.0.1:53: %v", err)
		}
		server := o.dns
		o.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return usagef("-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usagef("-ca: no PEM certificate in %s", o.ca)
		}
		o.tls = &tls.Config{RootCAs: pool}
	}
	switch {
	case o.passEnv != "" && o.tokenEnv != "":
		return usagef("-password-env and -xoauth2-token-env are mutually exclusive: give one credential")
	case o.user == "" && o.passEnv != "":
		return usagef("-password-env needs -user")
	case o.user == "" && o.tokenEnv != "":
		return usagef("-xoauth2-token-env needs -user (the account the token was issued for)")
	case o.tokenEnv != "":
		tok := getenv(o.tokenEnv)
		if tok == "" {
			return usagef("%s", unsetVar("xoauth2-token-env", o.tokenEnv, "SMTP_TOKEN"))
		}
		o.auth = submit.XOAuth2(o.user, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok}))
	case o.user != "" && o.passEnv == "":
		return usagef("-user needs -password-env VAR: passwords are never taken on the command line")
	case o.user != "":
		pass := getenv(o.passEnv)
		if pass == "" {
			return usagef("%s", unsetVar("password-env", o.passEnv, "SMTP_PASSWORD"))
		}
		o.auth = submit.PasswordAuth(o.user, pass)
	}
	return nil
}

// unsetVar says that the variable -flag names is empty or unset, without
// repeating what was given: a person who typed the secret itself in place
// of the variable's name must not see it printed back (nor find it in a
// terminal's scrollback or a CI log). variable is an example name.
func unsetVar(flag, given, variable string) string {
	what := "the environment variable it names is empty or unset"
	if !envName(given) {
		what = "what was given is not the name of an environment variable"
	}
	return fmt.Sprintf("-%s: %s (not repeated here, in case it is the secret itself); put the secret in a variable and give its name: %s=... portwise ... -%s %s",
		flag, what, variable, flag, variable)
}

// envName reports whether s can name an environment variable a shell sets:
// letters, digits and underscores, not starting with a digit.
func envName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}
