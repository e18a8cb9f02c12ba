package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// LockFileName is the store's inter-process lock file, directly in the certs root. It holds no
// data; its only use is the flock on it.
const LockFileName = ".evsesec.lock"

// ErrLockUnavailable is wrapped by the error of a write when this process may not create the lock
// file (the certs root is read-only to it): it cannot exclude other writers, so it does not write.
var ErrLockUnavailable = errors.New("the store's lock file cannot be created here (the certs root is read-only to this process)")

// storeLock serializes the store between goroutines (RWMutex) and between processes (flock on
// the lock file). The flock is taken per operation, never held while idle, so a second process
// (`evsesec call` next to a running service) is only ever kept waiting for one operation.
//
// The lock file lives inside the store, in the certs root: only who may change the store can
// create it, so no other local user can pre-create it to block the store or to make evsesec open
// a file of their choosing (as they could in a shared lock directory). It is opened relative to
// the root's directory descriptor without following a symlink, must be a regular file owned by
// this user, root or the owner of the certs root, and is checked after the flock to still be the
// file at that name (a lock on a file that was removed meanwhile excludes no one).
//
// The lock file exists only while an operation holds it: the operation that created it removes
// it again before it lets go, so a store at rest holds only its certificates and keys, and a
// rejected write leaves the tree exactly as it was. Removing it is safe because every locker
// checks, once it holds the flock, that the file is still the one at the name, and tries again
// otherwise. A lock file this operation did not create (one an administrator made for a process
// that may not create files in the certs root, or one left by a process that died holding it)
// is left where it is.
type storeLock struct {
	mu   sync.RWMutex
	root string
	path string
}

func newStoreLock(root string) *storeLock {
	return &storeLock{root: root, path: filepath.Join(root, LockFileName)}
}

// lock takes the store for writing and returns the function that releases it.
func (l *storeLock) lock() (func(), error) {
	l.mu.Lock()
	h, err := l.flock()
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	return func() { h.release(); l.mu.Unlock() }, nil
}

// lockOrLocal takes the store for writing like lock, and when the file lock cannot be had takes
// the in-process lock alone; shared says which. It is for operations that need no exclusion from
// other processes when they cannot have it: they then write nothing into the store (derived files
// go to this process's private directory, leaf events are only reported).
func (l *storeLock) lockOrLocal() (unlock func(), shared bool, err error) {
	l.mu.Lock()
	h, err := l.flock()
	if err != nil {
		return l.mu.Unlock, false, err
	}
	return func() { h.release(); l.mu.Unlock() }, true, nil
}

// rlock takes the store for reading: the in-process lock only. Readers never take the file
// lock, so a TLS handshake never waits for another process's write: every write is an atomic
// rename, and each step of a change that spans files (a leaf's chain file, then its single file;
// a CA and then what it issued) leaves a store that is valid on its own.
func (l *storeLock) rlock() func() {
	l.mu.RLock()
	return l.mu.RUnlock
}

// heldLock is a taken flock on the lock file.
type heldLock struct {
	f       *os.File
	path    string
	dev     uint64
	ino     uint64
	created bool // this operation created the file, so it removes it again
}

// release removes the lock file when this operation created it (see storeLock), then lets go of
// the flock. The file is removed only while it is still the one locked; nobody else removes or
// replaces it while the flock is held, so that check only guards against a file swapped by hand.
func (h *heldLock) release() {
	if h.created {
		if fi, err := os.Lstat(h.path); err == nil {
			if st, ok := statOf(fi); ok && uint64(st.Dev) == h.dev && st.Ino == h.ino {
				_ = os.Remove(h.path) // a file left behind is harmless: the next locker uses it
			}
		}
	}
	h.f.Close()
}

// flock opens (or creates) the lock file safely and takes an exclusive flock on it.
//
// An attempt fails (and the next one starts) when the file it waited on was removed by its
// creator: another operation went first. Lockers that wait together then race to create the
// next file, so each wins a round with a fair share; the bound only ends a loop on a file that
// something other than evsesec keeps replacing.
func (l *storeLock) flock() (*heldLock, error) {
	for attempt := 0; attempt < 1000; attempt++ {
		h, retry, err := l.tryFlock()
		if !retry {
			return h, err
		}
	}
	return nil, fmt.Errorf("lock %s: the file keeps being replaced", l.path)
}

const openFlags = syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC

// tryFlock is one attempt; retry is set when the lock file changed under it.
func (l *storeLock) tryFlock() (h *heldLock, retry bool, err error) {
	dirfd, err := syscall.Open(l.root, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOENT) {
		// A write into a store that does not exist yet creates it, as writing its first file
		// would.
		if err := os.MkdirAll(l.root, 0o755); err != nil {
			return nil, false, fmt.Errorf("lock: create certs root %s: %w", l.root, err)
		}
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("lock: open certs root %s: %w", l.root, err)
	}
	defer syscall.Close(dirfd)
	var rootSt syscall.Stat_t
	if err := syscall.Fstat(dirfd, &rootSt); err != nil {
		return nil, false, fmt.Errorf("lock: stat certs root %s: %w", l.root, err)
	}
	created := false
	fd, err := syscall.Openat(dirfd, LockFileName, openFlags, 0)
	if errors.Is(err, syscall.ENOENT) {
		fd, err = syscall.Openat(dirfd, LockFileName, openFlags|syscall.O_CREAT|syscall.O_EXCL, 0o600)
		switch {
		case errors.Is(err, syscall.EEXIST):
			return nil, true, nil // someone else made it just now
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EPERM):
			return nil, false, fmt.Errorf("lock %s: %w: %v", l.path, ErrLockUnavailable, err)
		}
		created = err == nil
	}
	switch {
	case errors.Is(err, syscall.ELOOP):
		return nil, false, fmt.Errorf("lock %s is a symbolic link; refusing to follow it (remove it: evsesec creates its own)", l.path)
	case err != nil:
		return nil, false, fmt.Errorf("lock: open %s: %w", l.path, err)
	}
	file := os.NewFile(uintptr(fd), l.path)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		file.Close()
		return nil, false, fmt.Errorf("lock: stat %s: %w", l.path, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		file.Close()
		return nil, false, fmt.Errorf("lock %s is not a regular file; refusing it (remove it: evsesec creates its own)", l.path)
	}
	euid := uint32(os.Geteuid())
	if st.Uid != euid && st.Uid != 0 && st.Uid != rootSt.Uid {
		file.Close()
		return nil, false, fmt.Errorf("lock %s belongs to uid %d, neither this user (%d) nor the owner of the certs root (%d); refusing it: another user could hold it to block the store (remove it)", l.path, st.Uid, euid, rootSt.Uid)
	}
	if created && euid == 0 && rootSt.Uid != 0 {
		// Made by root (an operator's `sudo evsesec call`) in a store another user owns: hand
		// it to that user, or the service running as them could never open it again.
		if err := syscall.Fchown(fd, int(rootSt.Uid), int(rootSt.Gid)); err != nil {
			file.Close()
			return nil, false, fmt.Errorf("lock: chown %s: %w", l.path, err)
		}
	}
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		file.Close()
		return nil, false, fmt.Errorf("lock %s: %w", l.path, err)
	}
	fi, err := os.Lstat(l.path)
	if now, ok := statOf(fi); err != nil || !ok || now.Dev != st.Dev || now.Ino != st.Ino {
		file.Close() // removed or replaced while we waited: lock the file that is there now
		return nil, true, nil
	}
	return &heldLock{f: file, path: l.path, dev: uint64(st.Dev), ino: st.Ino, created: created}, false, nil
}

func statOf(fi os.FileInfo) (*syscall.Stat_t, bool) {
	if fi == nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}
