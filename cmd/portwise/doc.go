// Command portwise answers "why can't my program send mail?" and sends test
// messages the way portwise's Dialer does.
//
//	portwise probe [-json] [-timing] [-timeout 10s] [-port 587,465] [-ca FILE] [-user U -password-env VAR] HOST
//	portwise send -from A -to B [-subject S] [-body-file F] [-user U -password-env VAR | -xoauth2-token-env VAR] [-v] [-timing] [-json] HOST[:PORT]
//
// probe checks every submission port of HOST concurrently (587, 465, 2525
// and 25 unless -port says otherwise) and prints a table of what each port
// does, what is wrong, and which port and TLS mode to configure. It exits 0
// when a usable secure port exists (and, with -user, the credential works
// there), 1 when none does, and 2 on a usage error.
//
// send composes a plain-text message and submits it through submit.Dialer:
// port race, verified TLS, AUTH only over TLS. -v prints the session
// transcript to stderr with the credential and the message redacted.
//
// -timing draws the race as a waterfall, one row per port: when it
// started, how long each step took (connect, banner, EHLO, STARTTLS, the
// TLS handshake, AUTH, the envelope and the message), which port won and
// why the others stopped; probe -timing draws its ports the same way.
// -json prints the same figures as JSON.
//
// Passwords and tokens are never taken on the command line, where other
// users of the machine can read them: -password-env names the environment
// variable that holds the password, and send's -xoauth2-token-env the one
// that holds an OAuth2 access token for XOAUTH2 (Gmail, Microsoft 365).
//
// Install with:
//
//	go install github.com/portwise/portwise/cmd/portwise@latest
package main
