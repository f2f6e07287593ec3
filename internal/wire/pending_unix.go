//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package wire

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// peekRaw reports, without waiting and without consuming anything,
// whether bytes are waiting on c's socket; io.EOF when the peer closed
// it. It looks through wrappers that expose the connection under them with
// NetConn, as *tls.Conn does; a connection it cannot inspect gives
// errNoPeek.
func peekRaw(c net.Conn) (pending bool, err error) {
	for range 8 {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false, errNoPeek
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, errNoPeek
	}
	var (
		n    int
		perr error
	)
	var b [1]byte
	cerr := rc.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	})
	switch {
	case cerr != nil:
		return false, cerr
	case errors.Is(perr, syscall.EAGAIN), errors.Is(perr, syscall.EWOULDBLOCK), errors.Is(perr, syscall.EINTR):
		return false, nil
	case perr != nil:
		return false, perr
	case n == 0:
		return false, io.EOF
	}
	return true, nil
}
