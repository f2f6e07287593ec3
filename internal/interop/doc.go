// Package interop holds portwise's interoperability tests against real
// submission servers on loopback: the TestInterop* tests against Postfix
// with Dovecot SASL (PORTWISE_REALMTA_*, written by .ci/realmta.sh), among
// them TestInteropChaosPostfix, internal/chaos's fault-injection test run
// through its proxy against Postfix; and TestMatrix, six checks on each
// server .ci/interop.sh starts (PORTWISE_INTEROP_*, collected in
// .ci/interop.env). Tests whose server's
// variables are absent skip; see CONTRIBUTING.md. The package has no code
// of its own; matrix and readme below it turn the matrix's results into
// README.md's table.
package interop
