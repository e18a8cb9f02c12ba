package store

import (
	"path/filepath"
	"strings"
)

// removeStaleTempFiles removes the temporary files of writes that a crash interrupted (an
// atomic write leaves its temporary file only when the process dies between creating and
// renaming it). It runs under the exclusive lock, which every writer of every process holds while
// it writes, so no temporary file it sees belongs to a write in progress.
func (s *Store) removeStaleTempFiles() []string {
	var removed []string
	for _, dir := range s.tempFileDirs() {
		des, err := s.fs.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, de := range des {
			if !strings.HasPrefix(de.Name(), tempPrefix) || de.IsDir() {
				continue
			}
			p := filepath.Join(dir, de.Name())
			if err := removeDurable(s.fs, p); err != nil {
				s.log.Warn("cannot remove leftover temporary file", "path", p, "err", err)
				continue
			}
			removed = append(removed, p)
		}
	}
	return removed
}

// tempFileDirs are the directories the store writes into: those it watches and their ocsp/ and
// der/ subdirectories, and the certs root's derived-files directory.
func (s *Store) tempFileDirs() []string {
	var out []string
	for _, d := range s.watchedDirs() {
		out = append(out, d, filepath.Join(d, ocspDirName), filepath.Join(d, derDirName))
	}
	return append(out, filepath.Join(s.cfg.CertsRoot, cacheDirName))
}
