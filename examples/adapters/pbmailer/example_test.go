package pbmailer_test

import (
	"fmt"
	"net/mail"
	"os"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/mailer"

	"github.com/portwise/portwise/examples/adapters/pbmailer"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
)

func ExampleBind() {
	srv := submittest.NewServer(nil) // stands in for smtp.example.com
	defer srv.Close()
	m := &submit.Mailer{Dialer: srv.Dialer(submit.PasswordAuth("user", "pass")), Host: "127.0.0.1"}
	defer m.Close()

	// In a program: app := pocketbase.New(); here a bare app in a
	// temporary directory.
	dir, err := os.MkdirTemp("", "pbmailer-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: dir})
	if err := app.Bootstrap(); err != nil {
		fmt.Println(err)
		return
	}
	defer app.ResetBootstrapState()

	pbmailer.Bind(app, &pbmailer.Mailer{Mailer: m}) // the one change

	// PocketBase's system e-mails, and yours, are sent this way:
	err = app.NewMailClient().Send(&mailer.Message{
		From:    mail.Address{Name: "Support", Address: "support@example.com"},
		To:      []mail.Address{{Address: "you@example.com"}},
		Subject: "Welcome",
		HTML:    "<p>Welcome aboard.</p>",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	got := srv.Messages()[0]
	fmt.Println(got.From, got.To, got.TLS)
	// Output: support@example.com [you@example.com] true
}
