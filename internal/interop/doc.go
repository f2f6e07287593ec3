// Package interop holds portwise's interoperability tests against a real
// Postfix with Dovecot SASL. They run when PORTWISE_REALMTA=1 and the
// PORTWISE_REALMTA_* variables written by .ci/realmta.sh are set; see
// CONTRIBUTING.md. The package has no code of its own.
package interop
