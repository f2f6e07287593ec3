package submit

import "github.com/emersion/go-sasl"

// NewLoginOneStep is the one-step LOGIN variant, which sends the user name
// as an initial response, for the tests of package submit_test.
func NewLoginOneStep(user, pass string) sasl.Client {
	return &loginClient{user: user, pass: pass, initial: true}
}
