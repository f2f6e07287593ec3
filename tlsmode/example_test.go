package tlsmode_test

import (
	"fmt"

	"github.com/portwise/portwise/tlsmode"
)

func ExampleDefault() {
	for _, c := range tlsmode.Default() {
		fmt.Println(c)
	}
	// Output:
	// 587/starttls
	// 465/implicit
	// 2525/starttls
}

func ExampleParse() {
	m, err := tlsmode.Parse("SSL")
	fmt.Println(m, err)
	// Output: implicit <nil>
}

func ExampleForHost() {
	cands, ok := tlsmode.ForHost("email-smtp.eu-west-1.amazonaws.com")
	fmt.Println(cands, ok)
	p, _ := tlsmode.ProviderForHost("smtp.sendgrid.net")
	fmt.Println(p.Name, p.Username, p.Auth)
	// Output:
	// [587/starttls 465/implicit 2587/starttls 2465/implicit 25/starttls] true
	// SendGrid apikey [api-key]
}
