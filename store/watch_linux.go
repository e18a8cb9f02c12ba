package store

import (
	"bytes"
	"errors"
	"sync"
	"syscall"
	"unsafe"
)

// dirWatch tells whether anything changed in a set of directories since the last look, with one
// non-blocking read of an inotify descriptor: the kernel queues an event when a file is created,
// written, renamed or removed, so a change made by any process before a call is seen by that
// call, without a stat of every bundle and directory. It covers edits in place too, which
// directory mtimes miss.
type dirWatch struct {
	mu  sync.Mutex
	fd  int
	buf []byte
}

const watchMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MODIFY | syscall.IN_ATTRIB |
	syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO | syscall.IN_CLOSE_WRITE |
	syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF

// newDirWatch watches dirs. It fails when one of them does not exist (it could appear later,
// unseen) or inotify is not available; the store then falls back to stamps.
func newDirWatch(dirs []string) (*dirWatch, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if _, err := syscall.InotifyAddWatch(fd, d, watchMask); err != nil {
			syscall.Close(fd)
			return nil, err
		}
	}
	return &dirWatch{fd: fd, buf: make([]byte, 64*1024)}, nil
}

// changed drains the queued events and reports whether there were any that matter. An error (a
// full queue, a closed descriptor) counts as a change. The lock file's comings and goings do not:
// it holds no data, and every operation that takes the lock creates and removes it (lock.go), so
// a bundle file in the certs root would otherwise make each locked read look like a change.
func (w *dirWatch) changed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
		return true
	}
	any := false
	for {
		n, err := syscall.Read(w.fd, w.buf)
		if errors.Is(err, syscall.EAGAIN) {
			return any
		}
		if err != nil {
			return true
		}
		if n <= 0 {
			return any
		}
		any = any || eventsMatter(w.buf[:n])
	}
}

// eventsMatter reports whether the inotify events in b include one that is not about the lock
// file. What it cannot read counts as a change.
func eventsMatter(b []byte) bool {
	for len(b) > 0 {
		if len(b) < syscall.SizeofInotifyEvent {
			return true
		}
		ev := (*syscall.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := syscall.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return true
		}
		name := b[syscall.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i] // the name is padded with NULs
		}
		if ev.Mask&syscall.IN_ISDIR != 0 || string(name) != LockFileName {
			return true
		}
		b = b[end:]
	}
	return false
}

func (w *dirWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd >= 0 {
		syscall.Close(w.fd)
		w.fd = -1
	}
}
