// Package credential gives tenants client credentials for a token endpoint
// (the OAuth 2.0 client credentials grant): the client ID is the tenant's
// identifier, the secret a random 256-bit string shown once.
//
// Secrets are stored hashed with argon2id (golang.org/x/crypto/argon2) in
// the PHC string format, with DefaultParams unless Config.Params says
// otherwise: m=19456 KiB, t=2, p=1, a 16-byte random salt and a 32-byte
// hash (OWASP's first recommended configuration). Hashes are compared in
// constant time. A plain secret names its record ("tcs_<id>_<random>"), so
// that checking it verifies exactly one hash; an unknown tenant, an unknown
// or expired secret and a malformed one verify a dummy hash of the same
// cost instead. Every failure is the same tenancy.ErrUnauthenticated, and
// the token endpoint (TokenHandler) answers each with the same 401 body:
// whether a tenant exists cannot be told by the answer or its time.
//
// Rotate gives a tenant a new secret and keeps the others valid for a grace
// period (Config.Grace), so that clients move over without downtime; Set
// replaces them at once; Revoke ends one, or all. The hashes live behind a
// small Store interface, implemented by the tenant stores in their own
// database (store/pgstore and store/sqlitestore, migration 3: a
// tenant_secrets table deleted with its tenant) and in memory
// (store/memstore).
//
// Tokens come from a jwtauth.Signer: they carry the tenant claim, exp, iat,
// and iss and aud when configured; signing keys rotate by kid
// (jwtauth.Config.KeyID and Keys), each pinned to its algorithm.
//
// An Authenticator is a tenancy.Component: purging a tenant deletes its
// secrets. Admin tools call Set, Rotate and Revoke and print the plain
// secret they return once.
package credential
