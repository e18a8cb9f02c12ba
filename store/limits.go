package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// usage counts the regular files of the store and their bytes: each CA bundle file, everything
// below a CA bundle directory and below the leaf directories (OCSP responses included), each path
// once even when directories are shared. Symlinks inside those directories are not counted: they
// hold no data (OpenSSL hash links, certificate links). A configured bundle or leaf directory
// path that is itself a symlink is followed: the data it points at is the store's.
func (s *Store) usage() (entries int, size int64) {
	seen := map[string]bool{}
	var walk func(p string, top bool)
	walk = func(p string, top bool) {
		if seen[p] {
			return
		}
		seen[p] = true
		stat := s.fs.Lstat
		if top {
			stat = s.fs.Stat
		}
		fi, err := stat(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("cannot stat store path", "path", p, "err", err)
			}
			return
		}
		switch {
		case fi.Mode().IsRegular():
			entries++
			size += fi.Size()
		case fi.IsDir():
			des, err := s.fs.ReadDir(p)
			if err != nil {
				s.log.Warn("cannot list store directory", "path", p, "err", err)
				return
			}
			for _, de := range des {
				walk(filepath.Join(p, de.Name()), false)
			}
		}
	}
	for _, t := range CATypes {
		walk(s.cfg.CABundlePath(t), true)
	}
	for _, lt := range []LeafType{LeafCSMS, LeafV2G} {
		cd, kd, _ := s.cfg.LeafDirs(lt)
		walk(cd, true)
		walk(kd, true)
	}
	return entries, size
}

// isFull reports whether the store is over its entry limit or at its byte limit (both counted;
// the reference overwrote the byte sum instead of adding, so its byte limit never worked).
func (s *Store) isFull() (bool, string) {
	entries, size := s.usage()
	if s.cfg.MaxStoreEntries > 0 && entries > s.cfg.MaxStoreEntries {
		return true, fmt.Sprintf("%d files, limit %d", entries, s.cfg.MaxStoreEntries)
	}
	if s.cfg.MaxStoreBytes > 0 && size >= s.cfg.MaxStoreBytes {
		return true, fmt.Sprintf("%d bytes, limit %d", size, s.cfg.MaxStoreBytes)
	}
	return false, ""
}

// refuseInput answers a write whose input alone dooms it, before the write lock is taken: res,
// logged as "COMMAND rejected: REASON" with attrs, unless the store is full, which every write
// answers first, before looking at its input (as the reference does). It takes only the read
// lock, so an input that can never be written changes nothing on disk, not even the lock file.
func (s *Store) refuseInput(command string, res InstallResult, reason string, attrs ...any) InstallResult {
	unlock := s.lock.rlock()
	full, why := s.isFull()
	unlock()
	if full {
		s.log.Warn(command+" rejected: store full", append(attrs, "why", why)...)
		return InstallStoreFull
	}
	s.log.Warn(command+" rejected: "+reason, attrs...)
	return res
}

// Usage reports the number of files and bytes the store counts against its limits.
func (s *Store) Usage() (entries int, size int64) {
	unlock := s.lock.rlock()
	defer unlock()
	return s.usage()
}
