//go:build !linux

package store

import "errors"

// dirWatch is not available outside Linux; the store uses directory stamps there.
type dirWatch struct{}

func newDirWatch([]string) (*dirWatch, error) { return nil, errors.New("no inotify") }
func (*dirWatch) changed() bool               { return true }
func (*dirWatch) close()                      {}
