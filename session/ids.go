package session

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
)

// idLen is the length of ids made by NewID: 16 random bytes in unpadded
// lower-case base32.
const idLen = 26

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new random id of 128 bits, 26 characters of [a-z2-7]. It
// is used for sessions, images and the secret part of handoff codes and
// phone tokens.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+).
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has the shape NewID makes.
func ValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func checkID(kind, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: malformed %s id", ErrInvalidID, kind)
	}
	return nil
}

// BlobKey names an image's bytes in a BlobStore: "<session id>/<image id>".
// Only [NewBlobKey] makes valid keys; every BlobStore rejects any other
// string with [ErrInvalidKey] before touching storage, so a key can never
// name anything outside the store's own namespace (no "..", no absolute
// paths, no separators beyond the one).
type BlobKey string

// NewBlobKey returns the key for an image's bytes. Both ids must come from
// [NewID].
func NewBlobKey(sessionID, imageID string) (BlobKey, error) {
	if err := checkID("session", sessionID); err != nil {
		return "", err
	}
	if err := checkID("image", imageID); err != nil {
		return "", err
	}
	return BlobKey(sessionID + "/" + imageID), nil
}

// Validate returns nil if k is a key NewBlobKey could have made, and an
// error wrapping ErrInvalidKey otherwise. BlobStore implementations call it
// first in every method.
func (k BlobKey) Validate() error {
	s, i, ok := strings.Cut(string(k), "/")
	if !ok || !ValidID(s) || !ValidID(i) {
		return ErrInvalidKey
	}
	return nil
}

// Parts returns the session and image ids of a valid key.
func (k BlobKey) Parts() (sessionID, imageID string, err error) {
	if err := k.Validate(); err != nil {
		return "", "", err
	}
	s, i, _ := strings.Cut(string(k), "/")
	return s, i, nil
}

// String returns the key as a string.
func (k BlobKey) String() string { return string(k) }
