package main

import (
	"context"
	"fmt"
)

// runCompress is owned by the compress work; this placeholder is replaced there.
func runCompress(_ context.Context, _ []string, io stdio) int {
	fmt.Fprintln(io.Err, "cli compress: not built yet")
	return exitFailed
}
