package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clinicpro/clinicalimages/session"
)

var _ session.Idempotency = (*Store)(nil)

// Idempotency records: one hash per (session, key) under
// "<prefix>upload:<session id>:<sha256 of the key>" (the key is the
// client's; hashing bounds its length and characters) with fields sum, img,
// tok, lease and exp (milliseconds of the Store's clock). Its TTL is the
// record's Expires, measured in the Store's clock like session TTLs.
func (s *Store) uploadKey(sessionID, key string) string {
	h := sha256.Sum256([]byte(key))
	return s.prefix + "upload:" + sessionID + ":" + hex.EncodeToString(h[:])
}

// claimUploadScript: KEYS[1] record; ARGV now, sum, tok, lease, exp, ttl
// (ms). Returns {claimed, sum, img, tok, lease, exp}.
var claimUploadScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local r = redis.call('HMGET', KEYS[1], 'sum', 'img', 'tok', 'lease', 'exp')
if r[1] and tonumber(r[5]) > now and (r[2] ~= '' or tonumber(r[4]) > now) then
  return {0, r[1], r[2], r[3], r[4], r[5]}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'sum', ARGV[2], 'img', '', 'tok', ARGV[3], 'lease', ARGV[4], 'exp', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {1, ARGV[2], '', ARGV[3], ARGV[4], ARGV[5]}
`)

// completeUploadScript: KEYS[1]; ARGV now, tok, img. 1 filled, 0 claim lost.
var completeUploadScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'img', 'tok', 'exp')
if not r[1] or r[1] ~= '' or r[2] ~= ARGV[2] or tonumber(r[3]) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'img', ARGV[3], 'lease', 0)
return 1
`)

// releaseUploadScript: KEYS[1]; ARGV tok. Deletes a pending claim held by tok.
var releaseUploadScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'img', 'tok')
if r[1] == '' and r[2] == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// ClaimUpload implements session.Idempotency atomically with a Lua script.
func (s *Store) ClaimUpload(ctx context.Context, sessionID, key string, rec session.UploadRecord) (session.UploadRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return session.UploadRecord{}, false, wrap(ctx, "claim upload", err)
	}
	if rec.Token == "" || rec.ImageID != "" {
		return session.UploadRecord{}, false, errors.New("redisstore: claim upload: a claim needs a token and no image id")
	}
	now := s.now()
	ttl := rec.Expires.Sub(now)
	if ttl < time.Millisecond {
		return session.UploadRecord{}, false, errors.New("redisstore: claim upload: the record would expire at once")
	}
	res, err := claimUploadScript.Run(ctx, s.c, []string{s.uploadKey(sessionID, key)},
		now.UnixMilli(), rec.SHA256, rec.Token, ms(rec.Lease), ms(rec.Expires), ttl.Milliseconds()).Slice()
	if err != nil {
		return session.UploadRecord{}, false, wrap(ctx, "claim upload", err)
	}
	if len(res) != 6 {
		return session.UploadRecord{}, false, fmt.Errorf("redisstore: claim upload: unexpected reply of %d items", len(res))
	}
	str := func(v any) string { x, _ := v.(string); return x }
	claimed, _ := res[0].(int64)
	cur := session.UploadRecord{SHA256: str(res[1]), ImageID: str(res[2]), Token: str(res[3]),
		Lease: fromMS(str(res[4])), Expires: fromMS(str(res[5]))}
	return cur, claimed == 1, nil
}

// CompleteUpload implements session.Idempotency.
func (s *Store) CompleteUpload(ctx context.Context, sessionID, key, token, imageID string) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "complete upload", err)
	}
	if imageID == "" {
		return errors.New("redisstore: complete upload: empty image id")
	}
	n, err := completeUploadScript.Run(ctx, s.c, []string{s.uploadKey(sessionID, key)},
		s.now().UnixMilli(), token, imageID).Int()
	if err != nil {
		return wrap(ctx, "complete upload", err)
	}
	if n != 1 {
		return fmt.Errorf("redisstore: complete upload: %w", session.ErrUploadClaimLost)
	}
	return nil
}

// ReleaseUpload implements session.Idempotency.
func (s *Store) ReleaseUpload(ctx context.Context, sessionID, key, token string) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "release upload", err)
	}
	if err := releaseUploadScript.Run(ctx, s.c, []string{s.uploadKey(sessionID, key)}, token).Err(); err != nil {
		return wrap(ctx, "release upload", err)
	}
	return nil
}

// LookupUpload implements session.Idempotency.
func (s *Store) LookupUpload(ctx context.Context, sessionID, key string) (session.UploadRecord, error) {
	if err := ctx.Err(); err != nil {
		return session.UploadRecord{}, wrap(ctx, "lookup upload", err)
	}
	v, err := s.c.HMGet(ctx, s.uploadKey(sessionID, key), "sum", "img", "tok", "lease", "exp").Result()
	if err != nil {
		return session.UploadRecord{}, wrap(ctx, "lookup upload", err)
	}
	str := func(x any) string { y, _ := x.(string); return y }
	if v[0] == nil {
		return session.UploadRecord{}, fmt.Errorf("%w: upload record", session.ErrNotFound)
	}
	rec := session.UploadRecord{SHA256: str(v[0]), ImageID: str(v[1]), Token: str(v[2]),
		Lease: fromMS(str(v[3])), Expires: fromMS(str(v[4]))}
	if !s.now().Before(rec.Expires) {
		return session.UploadRecord{}, fmt.Errorf("%w: upload record", session.ErrNotFound)
	}
	return rec, nil
}
