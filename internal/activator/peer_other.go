//go:build !unix

package activator

import "net"

// closedByPeer cannot tell without a read on this system: a parked request
// whose client went is found when it is answered or at its queue timeout.
func closedByPeer(net.Conn) bool { return false }

// peerState is what a look at a connection without reading it found.
type peerState int

const (
	peerOpen   peerState = iota // nothing to read, still open
	peerClosed                  // closed or reset by the other end
	peerSent                    // the other end sent something
)

// peek cannot look without a read on this system: a connection is taken as
// open, and what is wrong with it is found when it is used.
func peek(net.Conn) peerState { return peerOpen }

// awaitReadable cannot wait without a read on this system: the read buffer
// is taken at once.
func awaitReadable(net.Conn) error { return nil }
