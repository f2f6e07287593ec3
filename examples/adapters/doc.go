// Package adapters holds portwise adapters for the mail libraries and
// frameworks Go applications already use, each in its own package, in a
// module of its own so that portwise's users never download these
// libraries:
//
//   - mailv2: gopkg.in/mail.v2, whose mail.Send(s, m) then sends through a
//     portwise Mailer or Client;
//   - gomail: github.com/wneessen/go-mail, whose composed *mail.Msg is
//     sent through a portwise Client or Mailer;
//   - jwemail: github.com/jordan-wright/email, whose e.Send(addr, auth)
//     becomes jwemail.Send(ctx, m, e), and whose email.NewPool becomes
//     jwemail.NewPool with the same arguments and the same Send(e, timeout);
//   - authbossmail: an authboss.Mailer (github.com/volatiletech/authboss/v3)
//     for Config.Core.Mailer, composing a proper MIME message;
//   - pbmailer, a module of its own beneath this one (PocketBase brings
//     SQLite and more): pbmailer.Bind(app, &pbmailer.Mailer{Mailer: m})
//     sends every e-mail of a PocketBase application through portwise.
//
// Each is tested end to end through submittest and against the real
// Postfix of the interop matrix (internal/realmta; those tests skip unless
// PORTWISE_REALMTA=1, as after . .ci/interop.env). Run them from this
// directory: go test ./... && (cd pbmailer && go test ./...)
package adapters
