// Package probe answers "why can't my program send mail?" for one host: it
// checks every submission port concurrently, the way telnet, openssl
// s_client and swaks would be run by hand, and reports per port what was
// reachable, what the server said before and after TLS, what the
// certificate says, what is wrong (findings with a severity and a stable
// code) and which candidate to configure.
//
// probe opens its connections with the same session steps as
// submit.Dialer (there is one SMTP client in the module). It differs in
// one way: to be able to describe a certificate that does not verify, it
// completes the handshake without the standard verification and then
// verifies the chain and the host name itself. Nothing but EHLO,
// STARTTLS and QUIT is ever sent on those connections; the optional
// authentication check goes through submit.Dialer, so credentials are only
// ever sent over verified TLS.
//
// # The flow
//
//	rep, err := probe.Run(ctx, "smtp.example.com", probe.Options{}) // 587, 465, 2525, 25 at once
//	if err != nil {
//		log.Fatal(err) // a host it cannot use, or ctx ended
//	}
//	rep.WriteText(os.Stdout)             // the table a person reads
//	json.NewEncoder(os.Stdout).Encode(rep) // or stable JSON
//	if rep.Recommendation != nil {
//		fmt.Println("configure", *rep.Recommendation)
//	}
//
// Each Port holds its findings, worded for the command line; `portwise
// probe HOST` is this package with flags.
package probe
