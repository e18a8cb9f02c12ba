package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/internal/testtool"
)

// foreignUID stands for another local user (the tests run as root, which may chown to anyone).
const foreignUID = 4242

// opensslRoot makes a self-signed CA certificate with the openssl CLI and returns its PEM.
func opensslRoot(t *testing.T, cn string) string {
	t.Helper()
	dir := t.TempDir()
	runOpenSSL(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", "ca.key", "-subj", "/CN="+cn+"/O=EVerest/C=DE", "-days", "365", "-out", "ca.pem",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	b, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lockedLogStore opens a store on root whose log the test can read.
func lockedLogStore(t *testing.T, root string) (*Store, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := Open(DefaultConfig(root), Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testtool.SyncBuffer

// holdLockFile makes the lock file at lock and takes its flock, as another process holding the
// store's lock would; the test ends holding it unless it lets go of the returned file's flock.
func holdLockFile(t *testing.T, lock string) *os.File {
	t.Helper()
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(lock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return f
}

// The lock is a private file in the certs root, there only while an operation holds it, and it
// is the lock: holding its flock keeps the store's writers out until it is released. A lock file
// the operation found there (another process's) stays.
func TestLockFileInsideTheStoreExcludes(t *testing.T) {
	root := t.TempDir()
	s, logs := lockedLogStore(t, root)
	lock := filepath.Join(root, LockFileName)

	h, err := newStoreLock(root).flock()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(lock)
	if err != nil {
		t.Fatalf("no lock file in the certs root while the lock is held: %v", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		t.Errorf("lock file %v, uid %d; want a regular 0600 file of this user", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	h.release()
	if _, err := os.Lstat(lock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file left after its creator released it: %v", err)
	}
	if r := s.InstallCACertificate(opensslRoot(t, "Lock Root"), CAV2G); r != InstallAccepted {
		t.Fatalf("install: %s\n%s", r, logs)
	}
	if _, err := os.Lstat(lock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file left after a write: %v", err)
	}

	// Another process holds the lock (its file, which this write did not create).
	f := holdLockFile(t, lock)
	done := make(chan InstallResult, 1)
	go func() { done <- s.InstallCACertificate(opensslRoot(t, "Second Root"), CAMO) }()
	select {
	case r := <-done:
		t.Fatalf("a write went ahead while another process held the lock: %s", r)
	case <-time.After(500 * time.Millisecond):
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r != InstallAccepted {
			t.Errorf("install after the lock was released: %s\n%s", r, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write never got the lock")
	}
	if _, err := os.Lstat(lock); err != nil {
		t.Errorf("the other process's lock file was removed: %v", err)
	}
}

// An input that can never be written is answered without the write lock: while another process
// holds it, garbage and a leaf offered as a CA are refused at once, and nothing on disk changes.
func TestRejectedInputTakesNoLock(t *testing.T) {
	root := t.TempDir()
	s, logs := lockedLogStore(t, root)
	lock := filepath.Join(root, LockFileName)
	holdLockFile(t, lock)
	before := snapshotTree(t, root)
	leafDir := t.TempDir()
	runOpenSSL(t, leafDir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", "leaf.key", "-subj", "/CN=Leaf", "-days", "30", "-out", "leaf.pem",
		"-addext", "basicConstraints=critical,CA:FALSE")
	leafPEM, err := os.ReadFile(filepath.Join(leafDir, "leaf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := string(leafPEM)
	for _, c := range []struct {
		name string
		call func() InstallResult
	}{
		{"garbage CA", func() InstallResult { return s.InstallCACertificate("garbage", CAV2G) }},
		{"two certificates as one CA", func() InstallResult {
			return s.InstallCACertificate(opensslRoot(t, "One")+opensslRoot(t, "Two"), CAV2G)
		}},
		{"a leaf as CA", func() InstallResult { return s.InstallCACertificate(leaf, CAV2G) }},
		{"garbage leaf", func() InstallResult { return s.UpdateLeafCertificate("garbage", LeafV2G) }},
	} {
		done := make(chan InstallResult, 1)
		go func() { done <- c.call() }()
		select {
		case r := <-done:
			if r != InstallInvalidFormat {
				t.Errorf("%s: %s, want InvalidFormat\n%s", c.name, r, logs)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s waited for the write lock", c.name)
		}
	}
	assertTreeUnchanged(t, root, before)
}

// Lockers that each create and remove the lock file exclude each other: one that waited on a
// file its creator removed locks the file at the name instead. Each storeLock stands for a
// process (flocks of separate opens exclude each other within one process too).
func TestLockFileRemovalKeepsExclusion(t *testing.T) {
	root := t.TempDir()
	const lockers, rounds = 4, 200
	var holders, maxHolders, total atomic.Int32
	var wg sync.WaitGroup
	for range lockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := newStoreLock(root)
			for range rounds {
				unlock, err := l.lock()
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				for {
					m := maxHolders.Load()
					if n <= m || maxHolders.CompareAndSwap(m, n) {
						break
					}
				}
				total.Add(1)
				runtime.Gosched()
				holders.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	if maxHolders.Load() != 1 || total.Load() != lockers*rounds {
		t.Errorf("%d lockers held the lock at once (want 1); %d of %d rounds done", maxHolders.Load(), total.Load(), lockers*rounds)
	}
	if _, err := os.Lstat(filepath.Join(root, LockFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file left: %v", err)
	}
}

// What another user could leave at the lock's path is refused, not followed and not waited for;
// the store is not changed and the log says why. A lock file that belongs to the owner of the
// certs root is the store's own and is used.
func TestLockFileRefusesWhatOthersPlanted(t *testing.T) {
	pem := opensslRoot(t, "Planted Root")
	cases := []struct {
		name  string
		plant func(t *testing.T, lock string) (target string)
		want  string // in the log
	}{
		{"symlink to a missing file", func(t *testing.T, lock string) string {
			target := filepath.Join(t.TempDir(), "steered")
			if err := os.Symlink(target, lock); err != nil {
				t.Fatal(err)
			}
			return target
		}, "symbolic link"},
		{"symlink to another user's file", func(t *testing.T, lock string) string {
			target := filepath.Join(t.TempDir(), "theirs")
			if err := os.WriteFile(target, nil, 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(target, foreignUID, foreignUID); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, lock); err != nil {
				t.Fatal(err)
			}
			return target
		}, "symbolic link"},
		{"file of another user", func(t *testing.T, lock string) string {
			if err := os.WriteFile(lock, nil, 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(lock, foreignUID, foreignUID); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "belongs to uid 4242"},
		{"FIFO", func(t *testing.T, lock string) string {
			if err := syscall.Mkfifo(lock, 0o600); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "not a regular file"},
		{"directory", func(t *testing.T, lock string) string {
			if err := os.Mkdir(lock, 0o700); err != nil {
				t.Fatal(err)
			}
			return ""
		}, "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			lock := filepath.Join(root, LockFileName)
			target := tc.plant(t, lock)
			var targetBefore []byte
			if target != "" {
				targetBefore, _ = os.ReadFile(target)
			}
			s, logs := lockedLogStore(t, root)
			before := testtool.Snapshot(t, root)
			lockBefore, _ := os.Lstat(lock)
			done := make(chan InstallResult, 1)
			go func() { done <- s.InstallCACertificate(pem, CAV2G) }()
			select {
			case r := <-done:
				if r != InstallWriteError {
					t.Errorf("install with a planted lock: %s, want WriteError", r)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("install hangs on a planted lock")
			}
			if d := testtool.DiffSnapshots(before, testtool.Snapshot(t, root)); d != "" {
				t.Errorf("the store changed:\n%s", d)
			}
			if after, err := os.Lstat(lock); err != nil || after.Mode() != lockBefore.Mode() || after.Sys().(*syscall.Stat_t).Uid != lockBefore.Sys().(*syscall.Stat_t).Uid {
				t.Errorf("the planted lock path changed: %v %v", after, err)
			}
			if target != "" {
				if got, err := os.ReadFile(target); (err == nil) != (targetBefore != nil) || !bytes.Equal(got, targetBefore) {
					t.Errorf("the symlink's target was created or changed: %v", err)
				}
			}
			if !strings.Contains(logs.String(), tc.want) || !strings.Contains(logs.String(), lock) {
				t.Errorf("log does not say why (%q, %s):\n%s", tc.want, lock, logs)
			}
		})
	}

	t.Run("owner of the certs root", func(t *testing.T) {
		root := t.TempDir()
		lock := filepath.Join(root, LockFileName)
		if err := os.WriteFile(lock, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{root, lock} {
			if err := os.Lchown(p, foreignUID, foreignUID); err != nil {
				t.Fatal(err)
			}
		}
		s, logs := lockedLogStore(t, root)
		if r := s.InstallCACertificate(pem, CAV2G); r != InstallAccepted {
			t.Errorf("install with the root owner's lock: %s\n%s", r, logs)
		}
	})

	t.Run("made by root in another user's store", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root")
		}
		root := t.TempDir()
		if err := os.Lchown(root, foreignUID, foreignUID); err != nil {
			t.Fatal(err)
		}
		s, logs := lockedLogStore(t, root)
		if r := s.InstallCACertificate(pem, CAV2G); r != InstallAccepted {
			t.Fatalf("install: %s\n%s", r, logs)
		}
		// While root holds it (the file is gone again afterwards), it is the store owner's: a
		// process of theirs that finds it still there, root's having died, can open it.
		h, err := newStoreLock(root).flock()
		if err != nil {
			t.Fatal(err)
		}
		defer h.release()
		fi, err := os.Lstat(filepath.Join(root, LockFileName))
		if err != nil || fi.Sys().(*syscall.Stat_t).Uid != foreignUID {
			t.Errorf("lock file made by root: %v %v; want it owned by the store's owner", fi, err)
		}
	})
}

// oldLockPath is where evsesec before this change kept the lock: the system's lock directory,
// named after the store's path.
func oldLockPath(root string) string {
	canon := root
	if real, err := filepath.EvalSymlinks(root); err == nil {
		canon = real
	}
	sum := sha256.Sum256([]byte(canon))
	name := "evsesec-" + hex.EncodeToString(sum[:10]) + ".lock"
	for _, dir := range []string{"/run/lock", os.TempDir()} {
		if st, err := os.Stat(dir); err == nil && st.IsDir() && syscall.Access(dir, 2) == nil {
			return filepath.Join(dir, name)
		}
	}
	return filepath.Join(os.TempDir(), name)
}

// Nothing at the old, predictable lock path matters any more: a symlink there is not followed, a
// file another user holds locked there blocks nothing.
func TestOldLockPathIsNotUsed(t *testing.T) {
	pem := opensslRoot(t, "Old Path Root")
	t.Run("symlink", func(t *testing.T) {
		root := t.TempDir()
		old := oldLockPath(root)
		target := filepath.Join(t.TempDir(), "steered")
		if err := os.Symlink(target, old); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(old) })
		s, logs := lockedLogStore(t, root)
		if r := s.InstallCACertificate(pem, CAV2G); r != InstallAccepted {
			t.Errorf("install: %s\n%s", r, logs)
		}
		if _, err := os.Lstat(target); err == nil {
			t.Error("the store followed a symlink at the old lock path and created its target")
		}
	})
	t.Run("locked by another user", func(t *testing.T) {
		root := t.TempDir()
		old := oldLockPath(root)
		if err := os.WriteFile(old, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(old) })
		if err := os.Lchown(old, foreignUID, foreignUID); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(old)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		s, logs := lockedLogStore(t, root)
		done := make(chan InstallResult, 1)
		go func() { done <- s.InstallCACertificate(pem, CAV2G) }()
		select {
		case r := <-done:
			if r != InstallAccepted {
				t.Errorf("install: %s\n%s", r, logs)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("a file locked at the old lock path blocks the store")
		}
	})
}
