// Package script plays byte-exact SMTP server scripts, for the hostile
// servers that a real SMTP server cannot be made to imitate: a reply with
// extra lines in the same segment, a malformed code, a reply line that
// never ends, a server that sends one byte every five seconds, a reset
// right after the banner.
//
// A script is strict about what it expects but never about what it sends:
// a Step that does not match stops the script (Record.Err says why) and
// the rest of the client's lines are recorded, so a test can see exactly
// what a client did when it went off script. submittest.Server.ListenScript
// plays a script on every connection of a listener; Play plays one on any
// net.Conn.
//
// # The flow
//
//	evil := srv.ListenScript(submittest.Options{},
//		script.StartTLS(),                      // implicit TLS
//		script.Send("220 mx ESMTP\r\n"),
//		script.ExpectPrefix("EHLO "),
//		script.Send("250-mx\r\n250 AUTH PLAIN\r\n"),
//		script.ExpectPrefix("AUTH PLAIN "),
//		script.Send("235 ok\r\n421 surprise\r\n"), // two replies in one segment
//	)
//	recs, err := srv.WaitScripts(ctx, evil) // what the client did, line by line
package script
