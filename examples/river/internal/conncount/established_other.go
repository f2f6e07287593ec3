//go:build !linux

package conncount

import "net"

// established cannot ask the kernel without Linux's TCP_INFO: a connection
// counts as open until its proxy goroutine has seen it close, so a count
// may include one its client has just closed.
func established(*net.TCPConn) bool { return true }
