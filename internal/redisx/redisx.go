// Package redisx holds what the Redis-backed packages (session/redisstore,
// sync/redisnotify) share about Redis's failures.
package redisx

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Transient reports whether err says Redis could not be reached or could
// not serve the command for now, so that retrying later may succeed: a
// network error (refused, reset, closed, timed out), an exhausted or
// timed-out connection pool, or a server reply that asks to retry later
// (LOADING, READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, BUSY, NOREPLICAS,
// OOM, max clients). Other server replies (WRONGTYPE, NOAUTH, NOPERM,
// syntax errors) and a closed client are mistakes of the caller or of the
// configuration, not outages.
func Transient(err error) bool {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) ||
			redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsNoReplicasError(err) ||
			redis.IsOOMError(err) || redis.IsMaxClientsError(err) || redis.HasErrorPrefix(err, "BUSY ")
	}
	if errors.Is(err, redis.ErrClosed) {
		return false
	}
	var opErr *net.OpError
	var netErr net.Error
	return errors.As(err, &opErr) ||
		errors.As(err, &netErr) && netErr.Timeout() ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted)
}
