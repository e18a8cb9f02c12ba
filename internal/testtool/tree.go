package testtool

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Entry is what a Snapshot keeps of one path: its mode, the bytes of a file, the target of a
// symlink.
type Entry struct {
	Mode fs.FileMode
	Data string
	Link string
}

// Snapshot records every file, directory and symlink under root, by slash-separated path
// relative to root: tests compare snapshots to prove that a rejected call changed nothing on
// disk. A missing root is an empty snapshot. The store's lock file is part of it: it exists
// only while an operation holds the lock, so a rejected call leaves none behind either.
func Snapshot(t testing.TB, root string) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := Entry{Mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Link, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			e.Data = string(b)
		}
		out[filepath.ToSlash(rel)] = e
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// DiffSnapshots describes how two snapshots differ, one path a line ("added p", "removed p",
// "changed p"), sorted; "" when they are equal.
func DiffSnapshots(before, after map[string]Entry) string {
	var d []string
	for p, b := range before {
		if a, ok := after[p]; !ok {
			d = append(d, "removed "+p)
		} else if a != b {
			d = append(d, "changed "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d = append(d, "added "+p)
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}
