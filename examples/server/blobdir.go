package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// maxBlobDirs bounds how many instances on one machine may each take a
// default blob folder (blobs-1 … blobs-N) at once.
const maxBlobDirs = 64

// defaultBlobDir returns the default folder for image bytes and a func
// releasing it: the first of <base>/blobs-1, blobs-2, … that no live
// process holds, locked (an advisory lock the kernel drops when the
// process dies, even by SIGKILL). The folder's name is stable, so an
// instance started after a crash takes the folder the dead one left and
// its startup sweep deletes the photos there; two instances running at
// once never share one (each would sweep the other's photos, whose
// sessions it does not know). The base is the user's cache directory
// (os.UserCacheDir()/clinicalimages), or the system's temporary folder
// when there is none; folders are 0700.
func defaultBlobDir() (dir string, release func() error, err error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	base = filepath.Join(base, "clinicalimages")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", nil, fmt.Errorf("blob folder: %w", err)
	}
	for i := 1; i <= maxBlobDirs; i++ {
		d := filepath.Join(base, "blobs-"+strconv.Itoa(i))
		release, err := lockDir(d + ".lock")
		if errors.Is(err, errLocked) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("blob folder: %w", err)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			_ = release()
			return "", nil, fmt.Errorf("blob folder: %w", err)
		}
		return d, release, nil
	}
	return "", nil, fmt.Errorf("blob folder: %d instances already hold folders under %s; set BLOB_DIR", maxBlobDirs, base)
}

// errLocked: another live process holds the lock.
var errLocked = errors.New("locked by another process")
