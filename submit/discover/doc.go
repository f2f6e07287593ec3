// Package discover finds the submission servers of an email address or a
// domain the way desktop mail clients do: provider presets, the domain's
// autoconfig document over HTTPS, RFC 6186 SRV records, and the MX hosts of
// known providers. It returns []submit.Server for Dialer.DialServers; package
// submit itself does no HTTP and reads no XML.
//
// # The flow
//
//	servers, err := discover.Lookup(ctx, "me@example.com") // stops at the first step that answers
//	if err != nil {
//		log.Fatal(err) // errors.Is(err, discover.ErrNoServer) when nothing was found
//	}
//	c, err := dialer.DialServers(ctx, servers)
//
// A Lookuper replaces the HTTP client, the resolver and the URLs. For a host
// that is dialled by name, SRV plugs into the Dialer instead, pinned to the
// domains whose answers it trusts:
//
//	d.Discover = (&discover.SRV{AllowedDomains: []string{"example.com"}}).Lookup
//
// Providers lists the presets; ProviderForHost, ProviderForDomain and
// ProviderForMX find one, with its ports and the credential it expects.
package discover
