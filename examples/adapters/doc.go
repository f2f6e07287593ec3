// Package adapters holds portwise adapters for mail composition
// libraries, each in its own package, in a module of its own so that
// portwise's users never download these libraries:
//
//   - mailv2: gopkg.in/mail.v2, whose mail.Send(s, m) then sends through a
//     portwise Mailer or Client;
//   - gomail: github.com/wneessen/go-mail, whose composed *mail.Msg is
//     sent through a portwise Client or Mailer.
//
// Run their tests from this directory: go test ./...
package adapters
