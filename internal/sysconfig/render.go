package sysconfig

import (
	"log/slog"
	"strings"

	"github.com/tavernhq/tavern/internal/erlterm"
)

// Render writes c as a complete sys.config: every section and every key,
// each key under a comment saying what it means, that Parse reads back to
// the same Config (and erl's file:consult/1 reads too). It writes the real
// cookie and JWT secret: the file must be private (mode 0600).
func Render(c *Config) string {
	var b strings.Builder
	b.WriteString("%% -*- mode: erlang -*-\n")
	b.WriteString("%% Tavern configuration, read with file:consult/1: one {Section, [{Key, Value}]}\n")
	b.WriteString("%% per application. TAVERN_NODE, TAVERN_COOKIE and TAVERN_DSN override it.\n")
	b.WriteString("%% It holds the cookie: keep it private (mode 0600).\n")
	for i, sec := range schema {
		if i == 0 {
			b.WriteString("[")
		} else {
			b.WriteString(",\n\n ")
		}
		b.WriteString("%% " + sec.doc + "\n ")
		b.WriteString("{" + sec.name + ",\n  [")
		for j, k := range sec.keys {
			if j > 0 {
				b.WriteString(",\n   ")
			}
			b.WriteString("%% " + k.doc + "\n   ")
			prefix := "{" + k.name + ", "
			b.WriteString(prefix)
			b.WriteString(erlterm.FormatAt(k.render(c), 3+len(prefix)))
			b.WriteString("}")
		}
		b.WriteString("]}")
	}
	b.WriteString("].\n")
	return b.String()
}

// renderLine renders c on one line as section.key=value pairs.
func renderLine(c Config) string {
	var b strings.Builder
	b.WriteString("path=")
	b.WriteString(erlterm.FormatFlat(erlterm.String{Value: c.Path}))
	for _, sec := range schema {
		for _, k := range sec.keys {
			b.WriteString(" " + sec.name + "." + k.name + "=")
			b.WriteString(erlterm.FormatFlat(k.render(&c)))
		}
	}
	return b.String()
}

// logValue renders c for slog, as a group per section.
func logValue(c Config) slog.Value {
	attrs := []slog.Attr{slog.String("path", c.Path)}
	for _, sec := range schema {
		var group []slog.Attr
		for _, k := range sec.keys {
			group = append(group, slog.String(k.name, erlterm.FormatFlat(k.render(&c))))
		}
		attrs = append(attrs, slog.Attr{Key: sec.name, Value: slog.GroupValue(group...)})
	}
	return slog.GroupValue(attrs...)
}
