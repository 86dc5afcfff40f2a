// Package redislog sends the log lines of go-redis (github.com/redis/go-redis/v9)
// to a *slog.Logger, instead of the standard library's log package on
// stderr, where go-redis writes them by default: a reconnecting pub/sub, a
// failed dial, a truncated expiry.
//
// go-redis has one logger for the whole process, shared by every client:
// Use changes it for all of them, including clients made by other packages,
// and the last call wins. Call it once, where the process sets up its
// logging; libraries (this module's cache and limit packages among them)
// never call it.
package redislog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Logger adapts a *slog.Logger to go-redis's logging interface (the
// argument of redis.SetLogger).
type Logger struct {
	// Logger receives the lines. Default slog.Default().
	Logger *slog.Logger
	// Level is the level of every line: go-redis does not say how severe a
	// line is, and most report trouble. Default slog.LevelWarn.
	Level slog.Leveler
}

// Printf logs one go-redis line, with the attribute component=go-redis. It
// passes ctx on, so a handler such as tenancy.LogHandler adds what ctx
// carries.
func (l Logger) Printf(ctx context.Context, format string, v ...any) {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	level := slog.LevelWarn
	if l.Level != nil {
		level = l.Level.Level()
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if !logger.Enabled(ctx, level) {
		return
	}
	msg := strings.TrimRight(fmt.Sprintf(format, v...), "\n")
	logger.LogAttrs(ctx, level, msg, slog.String("component", "go-redis"))
}

// Use makes go-redis log every line through logger (nil: slog.Default()) at
// slog.LevelWarn. It is process-wide: see the package documentation.
func Use(logger *slog.Logger) {
	redis.SetLogger(Logger{Logger: logger})
}
