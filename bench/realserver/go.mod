module github.com/portwise/portwise/bench/realserver

go 1.26.0

require (
	github.com/portwise/portwise v0.0.0
	github.com/wneessen/go-mail v0.8.1
)

require (
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
	golang.org/x/text v0.40.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace github.com/portwise/portwise => ../..
