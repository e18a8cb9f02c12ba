package everest

import "syscall"

// setQuickAck asks the kernel to acknowledge received data at once rather than delaying the
// ACK; Linux clears the setting again on its own, so it is made again between reads. It reports
// whether the option took.
func setQuickAck(raw syscall.RawConn) bool {
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}
