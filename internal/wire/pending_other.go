//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package wire

import "net"

// peekRaw cannot inspect a socket on this system without reading from
// it: Unsolicited reads briefly instead.
func peekRaw(net.Conn) (bool, error) { return false, errNoPeek }
