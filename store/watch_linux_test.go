package store

import (
	"os"
	"path/filepath"
	"testing"
)

// The watch reports every change of a watched directory's entries except the lock file coming and
// going, which every locked operation does (lock.go).
func TestDirWatchIgnoresTheLockFile(t *testing.T) {
	dir := t.TempDir()
	w, err := newDirWatch([]string{dir})
	if err != nil {
		t.Skipf("no inotify here: %v", err)
	}
	defer w.close()
	lock := filepath.Join(dir, LockFileName)
	steps := []struct {
		name string
		do   func() error
		want bool
	}{
		{"nothing", func() error { return nil }, false},
		{"lock file created and removed", func() error {
			if err := os.WriteFile(lock, nil, 0o600); err != nil {
				return err
			}
			return os.Remove(lock)
		}, false},
		{"lock locked by a real operation", func() error {
			h, err := newStoreLock(dir).flock()
			if err != nil {
				return err
			}
			h.release()
			return nil
		}, false},
		{"a certificate file written", func() error { return os.WriteFile(filepath.Join(dir, "V2G_ROOT_CA.pem"), []byte("x"), 0o644) }, true},
		{"lock file and a certificate file together", func() error {
			if err := os.WriteFile(lock, nil, 0o600); err != nil {
				return err
			}
			if err := os.Remove(filepath.Join(dir, "V2G_ROOT_CA.pem")); err != nil {
				return err
			}
			return os.Remove(lock)
		}, true},
		{"a directory named like the lock file", func() error { return os.Mkdir(lock, 0o700) }, true},
		{"that directory removed", func() error { return os.Remove(lock) }, true},
		{"a name that only starts like the lock file", func() error {
			return os.WriteFile(filepath.Join(dir, LockFileName+".pem"), nil, 0o644)
		}, true},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := w.changed(); got != st.want {
			t.Errorf("%s: changed() = %v, want %v", st.name, got, st.want)
		}
	}
}

// Events that cannot be read whole count as a change.
func TestEventsMatterTruncated(t *testing.T) {
	for _, b := range [][]byte{{1, 2, 3}, make([]byte, 20)} {
		if len(b) == 20 {
			b[12] = 200 // a name length beyond the buffer
		}
		if !eventsMatter(b) {
			t.Errorf("eventsMatter(%v) = false, want true", b)
		}
	}
}
