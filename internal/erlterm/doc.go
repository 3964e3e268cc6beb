// Package erlterm reads and writes Erlang term text, the format of an OTP
// release's sys.config, exactly as file:consult/1 reads it: a sequence of
// terms, each ended by a full stop. It owns the scanner, the parser (with
// positions, error recovery and limits against hostile input), the Go
// representation of terms, and Format, which writes terms back as text that
// both this package and a real erl read to the same value.
//
// The accepted language is a strict subset of what erl accepts: every input
// Parse accepts, erl accepts and reads to the same term. The few things erl
// accepts that Parse rejects are listed on Parse.
package erlterm
