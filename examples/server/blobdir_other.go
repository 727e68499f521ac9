//go:build !unix

package main

import "os"

// lockDir without advisory locks: an exclusive create, so a folder a
// crashed process left stays taken until its lock file is removed.
func lockDir(path string) (release func() error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if os.IsExist(err) {
		return nil, errLocked
	}
	if err != nil {
		return nil, err
	}
	return func() error { _ = f.Close(); return os.Remove(path) }, nil
}
