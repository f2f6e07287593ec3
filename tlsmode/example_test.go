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
