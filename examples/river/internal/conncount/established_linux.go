package conncount

import (
	"net"

	"golang.org/x/sys/unix"
)

// established reports whether the kernel has c in state ESTABLISHED: the
// peer has not sent its FIN (that is CLOSE_WAIT) and c was not closed.
func established(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	state := uint8(0)
	// Control does not wait for a Read in progress on c.
	if err := rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state = info.State
		}
	}); err != nil {
		return false
	}
	return state == unix.BPF_TCP_ESTABLISHED
}
