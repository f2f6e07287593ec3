// Package fallback compares portwise's staggered port race with what a user
// of github.com/wneessen/go-mail writes to fall back from 587 to 465. It is a
// separate module so that go-mail never enters portwise's module graph.
package fallback
