// Package service is what the example apps (Notekeeper, Invoicer, Projectr)
// share around their own operations: the common configuration read from
// the environment, the HTTP handler chain, the huma API with its problem
// details, health probes and documentation, logging and metrics, a graceful
// server, and the healthcheck and openapi subcommands.
//
// An app brings its resolver, its operations and its storage:
//
//	env := service.NewEnv(os.Getenv)
//	cfg := service.LoadConfig(env, service.Defaults{Name: "invoicer", TenantStore: service.StoreDB})
//	quotas := env.Bool("QUOTAS", true) // the app's own variables, checked alike
//	if err := env.Err(); err != nil { ... }
//
//	h := service.NewHandler(service.HandlerConfig{
//		Resolver: resolve.Host{...},
//		API: service.API{
//			Title: "Invoicer", Version: "1.0.0",
//			Register: func(api huma.API) { huma.Register(api, ...) },
//		},
//	})
//
// The order of the chain, outermost first:
//
//	observe (access log, request metrics) -> recover -> tenancy middleware
//	(resolve, check status, tenant into context) -> rate limit -> routes
//
// Library packages never read the environment; this package is for the
// example apps only (it is internal to examples/).
package service
