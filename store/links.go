package store

import (
	"errors"
	"io/fs"
	"path/filepath"
)

// UpdateCertificateLinks points the configured symlinks (secc_leaf_cert_link, secc_leaf_key_link,
// cpo_cert_chain_link) at the current SECC leaf, its key and its chain, or removes them when there
// is no valid leaf. Each link is replaced atomically (a new link renamed over the old), so a
// consumer never sees it missing during a rotation. A regular file at a link path is left alone.
// It reports whether any link changed. The store calls it after every change of the SECC leaves;
// it is exported for callers that want to refresh the links on their own schedule.
func (s *Store) UpdateCertificateLinks() bool {
	if !s.linksConfigured() {
		return false // nothing to do: no lock taken, so no lock file made
	}
	unlock, err := s.lock.lock()
	if err != nil {
		return false
	}
	defer unlock()
	return s.updateLinksLocked()
}

func (s *Store) updateLinksLocked() bool {
	links := []struct{ path, target string }{
		{s.cfg.Resolve(s.cfg.SECCLeafCertLink), ""},
		{s.cfg.Resolve(s.cfg.SECCLeafKeyLink), ""},
		{s.cfg.Resolve(s.cfg.CPOCertChainLink), ""},
	}
	if !s.linksConfigured() {
		return false
	}
	v := s.readCAs()
	if sel, st := s.selectLeaves(v, s.kindLeaves(LeafV2G), s.now(), false); st == InfoAccepted {
		e := sel[0].e
		if len(e.single) > 0 {
			links[0].target = e.single[0].path
		}
		links[1].target = sel[0].key.path
		if cf := e.chainFile(); cf != nil {
			links[2].target = cf.path
		}
	}
	changed := false
	for _, l := range links {
		if l.path == "" {
			continue
		}
		c, err := s.setLink(l.path, l.target)
		if err != nil {
			s.log.Error("cannot update certificate link", "link", l.path, "err", err)
		}
		changed = changed || c
	}
	return changed
}

// linksConfigured reports whether any of the three links is configured.
func (s *Store) linksConfigured() bool {
	return s.cfg.SECCLeafCertLink != "" || s.cfg.SECCLeafKeyLink != "" || s.cfg.CPOCertChainLink != ""
}

// setLink makes path a symlink to target (absolute), or removes the symlink when target is "".
func (s *Store) setLink(path, target string) (bool, error) {
	fi, err := s.fs.Lstat(path)
	exists := err == nil
	if exists && fi.Mode()&fs.ModeSymlink == 0 {
		s.log.Warn("certificate link path holds a regular file; left alone", "link", path)
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if target == "" {
		if !exists {
			return false, nil
		}
		return true, removeDurable(s.fs, path)
	}
	if exists {
		if cur, err := s.fs.Readlink(path); err == nil && cur == target {
			return false, nil
		}
	}
	dir := filepath.Dir(path)
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	tmp := filepath.Join(dir, tempPrefix+"link-"+randomSuffix(6))
	if err := s.fs.Symlink(target, tmp); err != nil {
		return false, err
	}
	if err := s.fs.Rename(tmp, path); err != nil {
		s.fs.Remove(tmp)
		return false, err
	}
	return true, s.fs.SyncDir(dir)
}
