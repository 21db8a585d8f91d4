//go:build unix

package activator

import (
	"errors"
	"net"
	"syscall"
)

// closedByPeer reports whether the other end of c closed it (or reset it),
// without waiting. Input the client sent after its request is read and
// dropped on the way, as a parked connection closes after its answer.
func closedByPeer(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		closed = drainClosed(int(fd))
		return true
	})
	return closed || err != nil
}

// drainClosed reads what fd has without waiting, dropping it, and reports
// whether it reached the end (or a reset).
func drainClosed(fd int) bool {
	var buf [512]byte
	for range 128 { // at most 64 KiB a look
		n, _, err := syscall.Recvfrom(fd, buf[:], syscall.MSG_DONTWAIT)
		switch {
		case err == nil && n > 0, errors.Is(err, syscall.EINTR):
			// input after the request, dropped; or interrupted
		case err == nil:
			return true // EOF
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
			return false
		default:
			return true // reset
		}
	}
	return false
}

// peerState is what a look at a connection without reading it found.
type peerState int

const (
	peerOpen   peerState = iota // nothing to read, still open
	peerClosed                  // closed or reset by the other end
	peerSent                    // the other end sent something
)

// peek looks at c without consuming or waiting: whether the other end
// closed it, sent something, or neither. It neither takes c's read lock
// nor heeds its read deadline, so it may look at a connection another
// goroutine is reading, or whose deadline passed during a long answer.
func peek(c net.Conn) peerState {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peerOpen
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peerClosed
	}
	state := peerOpen
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		for {
			n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case errors.Is(rerr, syscall.EINTR):
				continue
			case rerr == nil && n > 0:
				state = peerSent
			case rerr == nil:
				state = peerClosed
			case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EWOULDBLOCK):
				state = peerOpen
			default:
				state = peerClosed
			}
			return
		}
	})
	if err != nil {
		return peerClosed // closed on this side
	}
	return state
}

// awaitReadable waits, without reading, until c has something to read (or
// its end), or its read deadline passes.
func awaitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if errors.Is(rerr, syscall.EINTR) {
				continue
			}
			return !errors.Is(rerr, syscall.EAGAIN) && !errors.Is(rerr, syscall.EWOULDBLOCK)
		}
	})
}
