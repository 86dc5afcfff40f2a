package redislog_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/go-tenancy/tenancy/redislog"
)

// Send go-redis's own lines to the service's logger, once, at start-up.
func ExampleUse() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	redislog.Use(logger) // every go-redis client in the process
}

// A Logger on its own formats a line as go-redis would hand it over.
func ExampleLogger() {
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output
			}
			return a
		},
	})
	l := redislog.Logger{Logger: slog.New(h)}
	l.Printf(context.Background(), "redis: discarding bad PubSub connection: %s", "EOF")
	// Output:
	// level=WARN msg="redis: discarding bad PubSub connection: EOF" component=go-redis
}
