// Command invoicer is Example 02 of the tenancy toolkit: a B2B invoicing
// service (customers, invoices and their line items) whose tenants are
// named by subdomain (acme.localhost:8000), by verified custom domain, or
// for local development by the X-Tenant-ID header, and isolated by a
// PostgreSQL schema per tenant (tenant_acme_corp, tenant_globex) or, with no
// database configured, by an embedded SQLite file per tenant. Its data
// layer is package billing.
//
//	go run ./examples/invoicer                                           # serve on :8000
//	go run ./examples/invoicer tenants create --identifier initech --name Initech
//	go run ./examples/invoicer migrate                                   # every tenant, with a progress bar
//
// See README.md for the configuration.
package main
