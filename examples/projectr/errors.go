package main

import "errors"

var errJWTSecretShort = errors.New("JWT_SECRET must be at least 32 bytes")
