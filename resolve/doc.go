// Package resolve finds the tenant a request names: by header, by host
// (subdomain or custom domain), by path prefix or by a JWT claim, or by a
// Chain of these that refuses requests whose sources disagree.
//
// Every resolver validates what it reads before it asks the Lookup anything:
// identifiers with tenancy.ValidateIdentifier (exactly as sent: nothing is
// trimmed or case-folded) and hosts with tenancy.NormalizeHost. Errors wrap
// the tenancy sentinel errors, so problem.FromError maps them to their HTTP
// status, and never quote the request.
//
// A source that is simply not in the request is "absent": its error wraps
// tenancy.ErrNoTenant and a Chain moves on to the next resolver. Everything
// else (a malformed value, an unknown tenant, a bad token, a store failure)
// is an error that stops the chain.
package resolve
