//go:build !linux

package wire

import "net"

// QuickAck does nothing on this system: see the Linux version.
func QuickAck(net.Conn) {}
