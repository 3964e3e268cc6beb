package ergo

const (
	Version           = "2.2.4" // Ergo Framework version
	VersionPrefix     = "ergo"  // Prefix using for the full version name
	VersionOTP    int = 25      // Erlang version support
)
