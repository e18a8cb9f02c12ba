package store

import (
	"crypto/x509"
	"io/fs"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evsesec/evsesec/certs"
)

// The store answers queries from memory. What it read is kept, per CA domain and per leaf
// directory, and reused while nothing changed:
//   - our own writes bump a generation counter (every change goes through genFS);
//   - other processes' changes are seen through the directories' and bundle files' stamps
//     (mtime, inode, size): a file dropped into a directory, or an atomic replace, changes them.
//
// A stamp younger than racyWindow is not trusted, because two changes within one clock tick of the
// filesystem can leave the same mtime (git's "racy" entries): such a view is used for one call and
// read again for the next. An edit in place of a file inside a bundle or leaf directory, which does
// not touch the directory, is seen when the directory next changes (or after a restart).
const racyWindow = 2 * time.Second

// genFS wraps the store's FS and counts its changes, so the store knows when what it keeps in
// memory is stale without asking the disk.
type genFS struct {
	FS
	gen *atomic.Uint64
}

func (g genFS) Rename(oldpath, newpath string) error {
	defer g.gen.Add(1)
	return g.FS.Rename(oldpath, newpath)
}

func (g genFS) Remove(name string) error {
	defer g.gen.Add(1)
	return g.FS.Remove(name)
}

func (g genFS) Symlink(oldname, newname string) error {
	defer g.gen.Add(1)
	return g.FS.Symlink(oldname, newname)
}

func (g genFS) MkdirAll(name string, perm fs.FileMode) error {
	defer g.gen.Add(1)
	return g.FS.MkdirAll(name, perm)
}

// pathStamp identifies the state of a path: missing, or its mtime, inode and size.
type pathStamp struct {
	exists bool
	st     fileStamp
}

// stampPath returns p's stamp and whether it is settled (old enough to be trusted).
func (s *Store) stampPath(p string) (pathStamp, bool) {
	fi, err := s.fs.Stat(p)
	if err != nil {
		return pathStamp{}, true
	}
	return pathStamp{exists: true, st: stampOf(fi)}, time.Since(fi.ModTime()) > racyWindow
}

// viewCache holds the last CA view and leaf sets with the stamps they were read at.
type viewCache struct {
	mu     sync.Mutex
	ca     *caView
	caKey  viewKey
	leaves map[LeafType]cachedLeaves
	// hashPools are the pools of hashPool; the key holds the view and sets, so their addresses
	// cannot be reused while the entry exists.
	hashPools map[hashPoolKey]*certs.Pool
}

type hashPoolKey struct {
	v    *caView
	sets [2]*leafSet
}

type cachedLeaves struct {
	key     viewKey
	leafSet *leafSet
}

// watchGen returns a counter of the changes the directory watch has seen, and false when the
// store has no watch (then stamps are compared instead).
func (s *Store) watchGen() (uint64, bool) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watch == nil {
		return 0, false
	}
	if s.watch.changed() {
		s.watchCount++
	}
	return s.watchCount, true
}

// ensureWatch starts watching the store's directories once they all exist. It is tried before
// a view is read, so no change between the watch starting and the read is missed.
func (s *Store) ensureWatch() {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watch != nil {
		return
	}
	if w, err := newDirWatch(s.watchedDirs()); err == nil {
		s.watch = w
		s.watchCount++
		// A store that is dropped without Close must not keep its inotify descriptor (a process
		// has only a few of them).
		runtime.AddCleanup(s, func(w *dirWatch) { w.close() }, w)
	}
}

// watchedDirs are the directories whose entries make up the store: each bundle directory, the
// directory of each bundle file, and the leaf certificate and key directories.
func (s *Store) watchedDirs() []string {
	seen := map[string]bool{}
	var out []string
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, t := range CATypes {
		p := s.cfg.CABundlePath(t)
		if s.isDirBundle(p) {
			add(p)
		} else {
			add(filepath.Dir(p))
		}
	}
	for _, lt := range []LeafType{LeafV2G, LeafCSMS} {
		cd, kd, _ := s.cfg.LeafDirs(lt)
		add(cd)
		add(kd)
	}
	return out
}

// viewKey says which state of the disk a view was read from: the store's own generation, and
// either the watch's change count or the stamps of the paths involved.
type viewKey struct {
	gen     uint64
	watched bool
	watch   uint64
	stamps  [4]pathStamp
}

// currentKey computes the key of the paths now; settled is false when a stamp is too young to
// be trusted (and the view must not be kept).
func (s *Store) currentKey(paths ...string) (key viewKey, settled bool) {
	key.gen = s.gen.Load()
	if w, ok := s.watchGen(); ok {
		key.watched, key.watch = true, w
		return key, true
	}
	settled = true
	for i, p := range paths {
		st, ok := s.stampPath(p)
		if i < len(key.stamps) {
			key.stamps[i] = st
		}
		settled = settled && ok
	}
	return key, settled
}

// cachedCAs returns the CA view, read anew only when a bundle changed.
func (s *Store) cachedCAs() *caView {
	paths := s.caPaths
	key, settled := s.currentKey(paths...)
	s.views.mu.Lock()
	if v := s.views.ca; v != nil && s.views.caKey == key {
		s.views.mu.Unlock()
		return v
	}
	s.views.mu.Unlock()
	s.ensureWatch()
	key, settled2 := s.currentKey(paths...)
	v := s.readCAsWith(s.readBundle)
	if settled && settled2 {
		s.views.mu.Lock()
		s.views.ca, s.views.caKey = v, key
		s.views.mu.Unlock()
	}
	return v
}

// cachedLeaves returns the leaf set of lt, read anew only when its directories changed.
func (s *Store) cachedLeaves(lt LeafType) *leafSet {
	certDir, keyDir, ok := s.cfg.LeafDirs(lt)
	if !ok {
		return s.buildLeaves(lt)
	}
	key, settled := s.currentKey(certDir, keyDir)
	s.views.mu.Lock()
	if c, hit := s.views.leaves[lt]; hit && c.key == key {
		s.views.mu.Unlock()
		return c.leafSet
	}
	s.views.mu.Unlock()
	s.ensureWatch()
	key, settled2 := s.currentKey(certDir, keyDir)
	ls := s.buildLeaves(lt)
	if settled && settled2 {
		s.views.mu.Lock()
		if s.views.leaves == nil {
			s.views.leaves = map[LeafType]cachedLeaves{}
		}
		s.views.leaves[lt] = cachedLeaves{key: key, leafSet: ls}
		s.views.mu.Unlock()
	}
	return ls
}

// selectionMemo is a leaf selection kept with the window of time in which it stays right: from
// when it was made until the next moment a certificate it depends on starts or ends.
type selectionMemo struct {
	v      *caView
	all    bool
	from   time.Time
	until  time.Time
	sel    []selectedLeaf
	status InfoStatus

	perRootOnce sync.Once
	perRoot     []selectedLeaf
}

// newestPerRoot is the first (newest) selected leaf under each trust anchor, computed once.
func (m *selectionMemo) newestPerRoot() []selectedLeaf {
	m.perRootOnce.Do(func() { m.perRoot = newestPerRoot(m.sel) })
	return m.perRoot
}

// newestPerRoot keeps, of leaves sorted newest first, the first under each trust anchor.
func newestPerRoot(sel []selectedLeaf) []selectedLeaf {
	var out []selectedLeaf
	seen := map[certs.Fingerprint]bool{}
	for _, sl := range sel {
		anchor := certs.FingerprintOf(sl.chain[len(sl.chain)-1])
		if !seen[anchor] {
			seen[anchor] = true
			out = append(out, sl)
		}
	}
	return out
}

// memoizedSelection returns a kept selection of ls for (v, all) valid at now, or nil.
func (ls *leafSet) memoizedSelection(v *caView, all bool, now time.Time) *selectionMemo {
	ls.memoMu.Lock()
	defer ls.memoMu.Unlock()
	for _, m := range ls.memos {
		if m.v == v && m.all == all && !now.Before(m.from) && now.Before(m.until) {
			return m
		}
	}
	return nil
}

// keepSelection remembers a selection made at now.
func (ls *leafSet) keepSelection(v *caView, all bool, now time.Time, sel []selectedLeaf, status InfoStatus) {
	m := &selectionMemo{v: v, all: all, from: now, until: nextChange(ls, v, now), sel: sel, status: status}
	ls.memoMu.Lock()
	defer ls.memoMu.Unlock()
	keep := ls.memos[:0]
	for _, old := range ls.memos {
		if old.v == v && old.all != all {
			keep = append(keep, old)
		}
	}
	ls.memos = append(keep, m)
}

// nextChange is the first moment after now at which a leaf of ls or a CA of v starts or ends
// being valid: until then, a selection made at now stays right. A certificate is valid from
// notBefore through notAfter inclusive (validityAt, certs.Verify), so it has ended at the first
// instant after notAfter; the next whole second would leave a kept answer stale for up to a
// second.
func nextChange(ls *leafSet, v *caView, now time.Time) time.Time {
	next := now.Add(24 * time.Hour)
	consider := func(t time.Time) {
		if t.After(now) && t.Before(next) {
			next = t
		}
	}
	for _, e := range ls.entries {
		consider(e.cert.NotBefore)
		consider(e.cert.NotAfter.Add(time.Nanosecond))
	}
	for _, f := range ls.files {
		for _, c := range f.certs {
			consider(c.NotBefore)
			consider(c.NotAfter.Add(time.Nanosecond))
		}
	}
	for _, b := range v.bundles {
		for _, f := range b.files {
			for _, c := range f.certs {
				consider(c.NotBefore)
				consider(c.NotAfter.Add(time.Nanosecond))
			}
		}
	}
	return next
}

// intermediatePool is the pool of the sub-CAs found in the leaf directory's chain files, built
// once per leaf set: every leaf verifies with it, whatever chain file it came in.
func (ls *leafSet) intermediatePool() *certs.Pool {
	if ls.parent != nil {
		// A kind view has the directory's files: one pool of them serves every kind (2,000
		// chain files make a pool of a megabyte or more).
		return ls.parent.intermediatePool()
	}
	ls.interOnce.Do(func() {
		var cs []*x509.Certificate
		for _, f := range ls.files {
			if len(f.certs) > 1 {
				cs = append(cs, f.certs[1:]...)
			}
		}
		ls.inter = certs.NewPool(cs...)
	})
	return ls.inter
}
