package main

import (
	"time"

	"github.com/go-tenancy/tenancy/examples/internal/service"
	"github.com/go-tenancy/tenancy/jwtauth"
)

// Config is Projectr's configuration, read from the environment: the
// examples' common one (see service.Config) and Projectr's own variables.
// Only the example reads environment variables; the library packages take
// Config structs.
type Config struct {
	service.Config
	// JWTSecret signs and verifies the tokens (JWT_SECRET, HS256), at least
	// 32 bytes. Empty: a random key is made at start, with a warning, and
	// tokens die with the process. Default empty.
	JWTSecret []byte
	// JWTIssuer is the iss claim of issued tokens, required on verified
	// ones (JWT_ISSUER). Default "projectr".
	JWTIssuer string
	// JWTAudience is the aud claim of issued tokens, required on verified
	// ones (JWT_AUDIENCE). Default "projectr-api".
	JWTAudience string
	// TokenTTL is how long an issued token is valid (JWT_TTL_SECONDS).
	// Default one hour.
	TokenTTL time.Duration
	// AuthRatePerMinute caps POST /auth/token attempts per tenant named and
	// client address (AUTH_RATE_LIMIT_PER_MINUTE); zero turns the limit
	// off. Default 10.
	AuthRatePerMinute int
	// CacheTTL is how long a project read is cached (CACHE_TTL, in
	// seconds); zero turns the response cache off. Default 60 seconds.
	CacheTTL time.Duration
	// JobWorkers is how many export jobs this instance works at once
	// (JOB_WORKERS); zero makes it queue jobs without working any, for a
	// deployment that runs its workers apart. Default 4.
	JobWorkers int
}

// loadConfig reads the configuration through getenv (os.Getenv in main).
// DATA_DIR defaults to ./data/projectr, REDIS_PREFIX to "projectr:" and
// TENANT_STORE to db, so that admin commands reach a running server.
func loadConfig(getenv func(string) string) (Config, error) {
	env := service.NewEnv(getenv)
	c := Config{Config: service.LoadConfig(env, service.Defaults{Name: "projectr", TenantStore: service.StoreDB})}
	if s, ok := env.Lookup("JWT_SECRET"); ok {
		if len(s) < jwtauth.MinHMACKeyLen {
			env.Fail(errJWTSecretShort)
		}
		c.JWTSecret = []byte(s)
	}
	c.JWTIssuer = env.String("JWT_ISSUER", "projectr")
	c.JWTAudience = env.String("JWT_AUDIENCE", "projectr-api")
	positive := func(n int) bool { return n > 0 }
	nonNegative := func(n int) bool { return n >= 0 }
	c.TokenTTL = time.Duration(env.Int("JWT_TTL_SECONDS", 3600, positive, "a positive number of seconds")) * time.Second
	c.AuthRatePerMinute = env.Int("AUTH_RATE_LIMIT_PER_MINUTE", 10, nonNegative, "a number of attempts, 0 for no limit")
	c.CacheTTL = time.Duration(env.Int("CACHE_TTL", 60, nonNegative, "a number of seconds, 0 for no cache")) * time.Second
	c.JobWorkers = env.Int("JOB_WORKERS", 4, nonNegative, "a number of workers, 0 for none")
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}
