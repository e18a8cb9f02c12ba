package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// storeLock serializes the store between goroutines (RWMutex) and between processes (flock on
// a lock file). The flock is taken per operation, never held while idle, so a second process
// (`evsesec call` next to a running service) is only ever kept waiting for one operation.
//
// The lock file lives outside the certificate tree, in the system's lock directory, named after
// the canonical path of the certs root: every process that opens the same store agrees on it,
// and a read-only or carefully audited tree never gains a file it did not ask for.
type storeLock struct {
	mu   sync.RWMutex
	path string
}

// lockPathFor returns the lock file of the store rooted at root.
func lockPathFor(root string) string {
	canon := filepath.Clean(root)
	if abs, err := filepath.Abs(canon); err == nil {
		canon = abs
	}
	if real, err := filepath.EvalSymlinks(canon); err == nil {
		canon = real
	}
	sum := sha256.Sum256([]byte(canon))
	name := "evsesec-" + hex.EncodeToString(sum[:10]) + ".lock"
	for _, dir := range []string{"/run/lock", os.TempDir()} {
		if st, err := os.Stat(dir); err == nil && st.IsDir() && syscall.Access(dir, 2 /* W_OK */) == nil {
			return filepath.Join(dir, name)
		}
	}
	return filepath.Join(os.TempDir(), name)
}

func newStoreLock(root string) *storeLock { return &storeLock{path: lockPathFor(root)} }

// lock takes the store for writing and returns the function that releases it.
func (l *storeLock) lock() (func(), error) {
	l.mu.Lock()
	f, err := l.flock(syscall.LOCK_EX)
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	return func() { f.Close(); l.mu.Unlock() }, nil
}

// rlock takes the store for reading: the in-process lock only. Readers never take the file
// lock, so a TLS handshake never waits for another process's write: every write is an atomic
// rename, and each step of a change that spans files (a leaf's chain file, then its single file;
// a CA and then what it issued) leaves a store that is valid on its own.
func (l *storeLock) rlock() func() {
	l.mu.RLock()
	return l.mu.RUnlock
}

func (l *storeLock) flock(how int) (*os.File, error) {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f, err = os.Open(l.path)
		if err != nil {
			return nil, fmt.Errorf("open lock file: %w", err)
		}
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", l.path, err)
	}
	return f, nil
}
