package submit_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/portwise/portwise/submit"
	"github.com/portwise/portwise/submit/submittest"
	"github.com/portwise/portwise/tlsmode"
)

// The one-step LOGIN variant sends the username as an initial response;
// the server then prompts only for the password, in base64 or in clear.
func TestLoginOneStepVariant(t *testing.T) {
	srv := submittest.NewServer(t)
	for _, clear := range []bool{false, true} {
		c := srv.ListenWith(tlsmode.StartTLS, submittest.Options{LoginPrompts: [2]string{"Username:", "password"}, LoginPromptsClear: clear})
		var tr bytes.Buffer
		d := srv.Dialer(submit.AuthFunc(func(context.Context, *submit.AuthInfo) (sasl.Client, error) {
			return submit.NewLoginOneStep("user", "pass"), nil
		}), c)
		d.Timeout, d.Transcript = 5*time.Second, &tr
		cl, err := d.Dial(context.Background(), "127.0.0.1")
		if err != nil {
			t.Fatalf("clear=%v: %v", clear, err)
		}
		cl.Quit()
		prompt := "password"
		if !clear {
			prompt = base64.StdEncoding.EncodeToString([]byte(prompt))
		}
		s := tr.String()
		if !strings.Contains(s, "C: AUTH LOGIN [redacted]") || strings.Count(s, "S: 334 ") != 1 || !strings.Contains(s, "S: 334 "+prompt) {
			t.Errorf("clear=%v: want one AUTH LOGIN with an initial response and only the password prompt:\n%s", clear, s)
		}
	}
}
