package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the filesystem the store works on. The store never calls package os for its data
// directly, so tests can plug in an implementation that fails writes, fsync or rename (ENOSPC,
// EIO) and check that the store reports the failure and stays unchanged.
type FS interface {
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	Lstat(name string) (fs.FileInfo, error)
	MkdirAll(name string, perm fs.FileMode) error
	// CreateTemp creates a new file in dir for an atomic write.
	CreateTemp(dir, pattern string) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	Symlink(oldname, newname string) error
	Readlink(name string) (string, error)
	// SyncDir makes a rename or removal in dir durable.
	SyncDir(dir string) error
}

// File is a file being written by an atomic write.
type File interface {
	Name() string
	Write(p []byte) (int, error)
	Sync() error
	Chmod(mode fs.FileMode) error
	Close() error
}

// OSFS is the FS of the operating system.
type OSFS struct{}

// ReadFile implements FS.
func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// ReadDir implements FS.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Stat implements FS.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// Lstat implements FS.
func (OSFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }

// CreateTemp implements FS.
func (OSFS) CreateTemp(dir, pattern string) (File, error) { return os.CreateTemp(dir, pattern) }

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Symlink implements FS.
func (OSFS) Symlink(oldname, newname string) error { return os.Symlink(oldname, newname) }

// Readlink implements FS.
func (OSFS) Readlink(name string) (string, error) { return os.Readlink(name) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// tempPrefix starts the names of files being written. Readers skip them, so a crash between
// create and rename leaves only a stray temporary file that never looks like a certificate.
const tempPrefix = ".evsesec-tmp-"

// writeAtomic replaces path with data: a temporary file in the same directory is written,
// fsynced, given perm, renamed over path, and the directory is fsynced. On any failure path is
// left as it was: the temporary file is removed, directories this call created are removed again,
// and when only the final fsync of the directory fails (the new content is already visible) the
// old content is put back, so a caller that reports the failure never leaves the change behind.
// Missing parent directories are created with dirPerm, and their own entries are fsynced too, so
// a file in a new directory survives a power loss.
func writeAtomic(fsys FS, path string, data []byte, perm, dirPerm fs.FileMode) error {
	dir := filepath.Dir(path)
	created, err := mkdirAllDurable(fsys, dir, dirPerm)
	if err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	undoDirs := func() { removeCreatedDirs(fsys, created) }
	f, err := fsys.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		undoDirs()
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	tmp := f.Name()
	fail := func(step string, err error) error {
		f.Close()
		fsys.Remove(tmp)
		undoDirs()
		return fmt.Errorf("write %s: %s: %w", path, step, err)
	}
	// Set the mode before any byte is written, so a key is never readable by others, not even
	// for a moment.
	if err := f.Chmod(perm); err != nil {
		return fail("chmod", err)
	}
	if _, err := f.Write(data); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := f.Close(); err != nil {
		fsys.Remove(tmp)
		undoDirs()
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	// What path holds now, to put it back if the rename cannot be made durable.
	old := saveEntry(fsys, path)
	if err := fsys.Rename(tmp, path); err != nil {
		fsys.Remove(tmp)
		undoDirs()
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		if rerr := old.restore(fsys, path); rerr != nil {
			return fmt.Errorf("write %s: fsync directory: %w (and the old content could not be put back: %v)", path, err, rerr)
		}
		undoDirs()
		return fmt.Errorf("write %s: fsync directory: %w", path, err)
	}
	return nil
}

// mkdirAllDurable is MkdirAll that also fsyncs the parent of every directory it creates, and
// returns the directories it created, outermost first. On failure the ones it made are removed.
func mkdirAllDurable(fsys FS, dir string, perm fs.FileMode) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.Lstat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append([]string{d}, missing...)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		removeCreatedDirs(fsys, missing)
		return nil, err
	}
	for _, d := range missing {
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			removeCreatedDirs(fsys, missing)
			return nil, err
		}
	}
	return missing, nil
}

// removeCreatedDirs removes directories made by mkdirAllDurable, innermost first. A directory
// that is not empty (someone else put a file there meanwhile) stays.
func removeCreatedDirs(fsys FS, created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		if fsys.Remove(created[i]) != nil {
			return
		}
	}
	if len(created) > 0 {
		fsys.SyncDir(filepath.Dir(created[0]))
	}
}

// savedEntry is what a path held before a change: nothing, a regular file (bytes and mode) or a
// symlink (its target).
type savedEntry struct {
	exists bool
	link   string
	isLink bool
	data   []byte
	mode   fs.FileMode
	err    error // the old content could not be read: it cannot be put back
}

func saveEntry(fsys FS, path string) savedEntry {
	fi, err := fsys.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return savedEntry{}
	}
	if err != nil {
		return savedEntry{exists: true, err: err}
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := fsys.Readlink(path)
		return savedEntry{exists: true, isLink: true, link: target, err: err}
	}
	if !fi.Mode().IsRegular() {
		return savedEntry{exists: true, err: errors.New("not a regular file")}
	}
	data, err := fsys.ReadFile(path)
	return savedEntry{exists: true, data: data, mode: fi.Mode().Perm(), err: err}
}

// restore puts the saved entry back at path (atomically: a new temporary file or link renamed
// over it), or removes path when there was nothing.
func (e savedEntry) restore(fsys FS, path string) error {
	dir := filepath.Dir(path)
	switch {
	case e.err != nil:
		return e.err
	case !e.exists:
		if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	case e.isLink:
		tmp := filepath.Join(dir, tempPrefix+"link-"+randomSuffix(6))
		if err := fsys.Symlink(e.link, tmp); err != nil {
			return err
		}
		if err := fsys.Rename(tmp, path); err != nil {
			fsys.Remove(tmp)
			return err
		}
	default:
		f, err := fsys.CreateTemp(dir, tempPrefix+"*")
		if err != nil {
			return err
		}
		tmp := f.Name()
		err = f.Chmod(e.mode)
		if err == nil {
			_, err = f.Write(e.data)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = fsys.Rename(tmp, path)
		}
		if err != nil {
			fsys.Remove(tmp)
			return err
		}
	}
	// Best effort: the directory's fsync has just failed once.
	fsys.SyncDir(dir)
	return nil
}

// removeDurable removes path and fsyncs its directory. A file that is already gone is not an
// error. When the fsync of the directory fails, the file is put back, so a caller that reports
// the failure leaves the store as it was.
func removeDurable(fsys FS, path string) error {
	old := saveEntry(fsys, path)
	if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		if old.exists {
			if rerr := old.restore(fsys, path); rerr != nil {
				return fmt.Errorf("remove %s: fsync directory: %w (and the file could not be put back: %v)", path, err, rerr)
			}
		}
		return fmt.Errorf("remove %s: fsync directory: %w", path, err)
	}
	return nil
}

// randomSuffix returns n random bytes as hex, for file names that must not collide.
func randomSuffix(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeIfChanged writes data to path atomically unless the file already holds exactly data.
func (s *Store) writeIfChanged(path string, data []byte, perm fs.FileMode) error {
	if old, err := s.fs.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeAtomic(s.fs, path, data, perm, 0o755)
}
