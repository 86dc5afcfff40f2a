package main

import (
	"github.com/go-tenancy/tenancy/examples/internal/service"
)

// Config is the service's configuration, read from the environment: the
// examples' common one (see service.Config), which Notekeeper uses as it
// is. Only the example reads environment variables; the library packages
// take Config structs.
type Config = service.Config

// loadConfig reads the configuration through getenv (os.Getenv in main).
// DATA_DIR defaults to ./data/notekeeper, REDIS_PREFIX to "notekeeper:"
// and TENANT_STORE to memory.
func loadConfig(getenv func(string) string) (Config, error) {
	env := service.NewEnv(getenv)
	c := service.LoadConfig(env, service.Defaults{Name: "notekeeper", TenantStore: service.StoreMemory})
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}
