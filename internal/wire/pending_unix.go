//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package wire

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// socket returns the socket under c. It looks through wrappers that
// expose the connection under them with NetConn, as *tls.Conn does, at
// most 8 deep; ok is false when there is no socket to reach.
func socket(c net.Conn) (rc syscall.RawConn, ok bool) {
	for range 8 {
		u, wraps := c.(interface{ NetConn() net.Conn })
		if !wraps {
			break
		}
		c = u.NetConn()
	}
	sc, isSocket := c.(syscall.Conn)
	if !isSocket {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

// peekRaw reports, without waiting and without consuming anything,
// whether bytes are waiting on c's socket; io.EOF when the peer closed
// it. A connection whose socket it cannot reach gives errNoPeek.
func peekRaw(c net.Conn) (pending bool, err error) {
	rc, ok := socket(c)
	if !ok {
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
