//go:build !unix

package activator

import "net"

// closedByPeer cannot tell without a read on this system: a parked request
// whose client went is found when it is answered or at its queue timeout.
func closedByPeer(net.Conn) bool { return false }
