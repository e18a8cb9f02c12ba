//go:build !linux

package everest

import "syscall"

// setQuickAck reports that quick ACKs are not available (a Linux socket option).
func setQuickAck(syscall.RawConn) bool { return false }
