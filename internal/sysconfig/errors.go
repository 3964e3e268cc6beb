package sysconfig

import "errors"

// Errors of Load.
var (
	// ErrInsecureConfig: the file gives users other than its owner access
	// (mode wider than 0600) while node.allow_insecure_config is false. A
	// sys.config holds the cookie, and often the JWT secret and a DSN's
	// password: whoever reads the cookie can run code on every node.
	ErrInsecureConfig = errors.New("sysconfig: config file readable by other users")
)
