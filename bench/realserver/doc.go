// Command realserver compares portwise's Mailer with what users would
// otherwise run, against one real Postfix: the Mailer with BDAT and with
// DATA, Nodemailer's pool (node/nodemailer.mjs, from npm at the version of
// node/package-lock.json), go-mail, net/smtp, and Postfix's own
// smtp-source, which shows what the server can take. It is the table of
// BENCHMARKS.md's "A real Postfix" section:
//
//	. .ci/interop.env   # or .ci/realmta.env: PORTWISE_REALMTA_PLAIN, _DISCARD, _LOG
//	cd bench/realserver && go run .
//
// Every client sends the same 2 KiB message to PORTWISE_REALMTA_DISCARD
// (Postfix's discard agent drops it: thousands of messages fill no
// maildir) on PORTWISE_REALMTA_PLAIN, a port without TLS or AUTH, because
// smtp-source speaks neither; .ci/realmta.sh configures both. Each runs
// with 1 and 4 connections at once, on loopback and through
// internal/netem's proxy at a 20 ms round trip, as a process of its own
// (the Go clients are this program run with -client; process.go) so that
// its CPU is its own: the clients report the CPU and the wall time of
// their sending (getrusage, process.cpuUsage), smtp-source its whole
// process. Postfix's CPU is read from /proc (its master and every process
// under it, those that exit included; procstat.go), and the machine's, so
// that what other people's work took is shown too.
//
// The runs are interleaved (every client once, in a rotated order, then
// again) and the tables show medians. On loopback, where the CPU bounds
// the rate and a virtual machine's speed drifts within seconds, a run is
// sent in slices (-slices) interleaved with the other clients' slices, by
// a client process that stays up and keeps its connections between them.
// A slice during which the rest of the machine was busy (-max-others) is
// sent again, and the spread of a fixed piece of work timed before each
// slice is printed: how much the machine itself varied.
//
// It is a module of its own so that go-mail stays out of portwise's
// go.mod. CI runs it with -smoke (a few hundred messages, one run) so that
// it cannot rot.
package main
