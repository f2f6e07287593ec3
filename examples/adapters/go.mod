module github.com/portwise/portwise/examples/adapters

go 1.26.0

replace github.com/portwise/portwise => ../..

require (
	github.com/jordan-wright/email v4.0.1-0.20210109023952-943e75fe5223+incompatible
	github.com/portwise/portwise v0.0.0-00010101000000-000000000000
	github.com/volatiletech/authboss/v3 v3.5.0
	github.com/wneessen/go-mail v0.8.1
	gopkg.in/mail.v2 v2.3.1
)

require (
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6 // indirect
	github.com/emersion/go-smtp v0.25.1 // indirect
	github.com/friendsofgo/errors v0.9.2 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
	golang.org/x/text v0.40.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	golang.org/x/xerrors v0.0.0-20220907171357-04be3eba64a2 // indirect
	gopkg.in/alexcesaro/quotedprintable.v3 v3.0.0-20150716171945-2caba252f4dc // indirect
)
