package sysconfig

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/tavernhq/tavern/internal/erlterm"
)

// Environment variables that override the file.
const (
	EnvNode   = "TAVERN_NODE"   // Node.Name
	EnvCookie = "TAVERN_COOKIE" // Node.Cookie
	EnvDSN    = "TAVERN_DSN"    // Store.DSN
)

// Load reads the sys.config at path, applies the environment overrides
// (TAVERN_NODE, TAVERN_COOKIE, TAVERN_DSN) from the process environment
// and validates the result; see Parse. A file that cannot be read is an
// error naming path (errors.Is(err, fs.ErrNotExist) when it is missing).
//
// The file holds secrets, so it must give no access to users other than
// its owner (mode 0600 or narrower; the owner's execute bit is ignored):
// a wider mode is ErrInsecureConfig, which says how to fix it, unless the
// file sets node.allow_insecure_config (development only). The mode is
// checked only once the file parses: a broken file is reported as such.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sysconfig: %w", err)
	}
	defer f.Close()
	st, err := f.Stat() // the file read, whatever is renamed over path meanwhile
	if err != nil {
		return nil, fmt.Errorf("sysconfig: %w", err)
	}
	src, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("sysconfig: %w", err)
	}
	c, err := Parse(path, src, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && !c.Node.AllowInsecureConfig {
		return nil, fmt.Errorf("%w: %s has mode %04o, but it holds secrets (the cookie) and must be readable by its owner only: "+
			"run chmod 600 %s (or, for development only, set {allow_insecure_config, true} in its node section)",
			ErrInsecureConfig, path, perm, path)
	}
	return c, nil
}

// Parse decodes src, the contents of the sys.config at path: exactly one
// term, a list of {Section, [{Key, Value}, ...]} tuples with the sections
// node, gateway, store, board and cluster. Keys left out keep their
// defaults (Default). Then it applies the overrides that lookupEnv (which
// may be nil) finds: a variable that is set overrides the file even when
// it is empty (and an empty one is then reported as wrong). Last it
// validates the result as Validate does.
//
// Strings may be written "..." or <<"...">>, booleans are the atoms true
// and false, durations are integer milliseconds in keys ending _ms.
// Unknown sections and keys, repeated ones, wrong types and values out of
// range are errors. Parse reports all of them at once, as an
// erlterm.ErrorList sorted by position, each "file:line:col: message"
// pointing at the offending term; a bad override is reported as
// "TAVERN_DSN: message". No error ever shows the cookie or the JWT secret.
func Parse(path string, src []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	terms, err := erlterm.Parse(path, src)
	if err != nil {
		return nil, err
	}
	c := Default()
	c.Path = path
	d := &decoder{o: newOrigin(path)}
	d.config(terms, &c)
	d.applyEnv(lookupEnv, &c)
	errs := append(d.errs, c.validate(d.o)...)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return &c, nil
}

// origin records where each setting came from, so that validation can
// point at it.
type origin struct {
	file string
	pos  map[string]erlterm.Pos // field ("gateway.max_frame") or element ("gateway.origins#2") -> its value
	env  map[string]string      // field -> the environment variable that set it
	bad  map[string]bool        // fields whose value did not decode (already reported)
}

func newOrigin(file string) *origin {
	return &origin{file: file, pos: map[string]erlterm.Pos{}, env: map[string]string{}, bad: map[string]bool{}}
}

type decoder struct {
	o    *origin
	errs erlterm.ErrorList
}

func (d *decoder) errorf(pos erlterm.Pos, format string, args ...any) {
	d.errs.Add(d.o.file, pos, format, args...)
}

func (d *decoder) config(terms []erlterm.Term, c *Config) {
	if len(terms) == 0 {
		d.errorf(erlterm.Pos{}, "the file holds no term; want a list of {Section, [{Key, Value}]} tuples")
		return
	}
	for _, extra := range terms[1:] {
		d.errorf(extra.Pos(), "a sys.config holds exactly one term, a list; this is another")
	}
	top, ok := terms[0].(erlterm.List)
	if !ok || top.Tail != nil {
		d.errorf(terms[0].Pos(), "expected a list of {Section, [{Key, Value}]} tuples, got %s", kind(terms[0]))
		return
	}
	seen := map[string]erlterm.Pos{}
	for _, e := range top.Elems {
		t, ok := e.(erlterm.Tuple)
		if !ok || len(t.Elems) != 2 {
			d.errorf(e.Pos(), "expected a {Section, [{Key, Value}]} tuple, got %s", kind(e))
			continue
		}
		name, ok := t.Elems[0].(erlterm.Atom)
		if !ok {
			d.errorf(t.Elems[0].Pos(), "expected a section name (an atom), got %s", kind(t.Elems[0]))
			continue
		}
		sec := findSection(name.Name)
		if sec == nil {
			var names []string
			for _, s := range schema {
				names = append(names, s.name)
			}
			d.errorf(name.At, "%s: unknown section%s (the sections are %s)",
				erlterm.FormatFlat(name), didYouMean(name.Name, names), strings.Join(names, ", "))
			continue
		}
		if first, dup := seen[sec.name]; dup {
			d.errorf(name.At, "%s: repeated section (first at %v)", sec.name, first)
			continue
		}
		seen[sec.name] = name.At
		d.section(sec, t.Elems[1], c)
	}
}

func (d *decoder) section(sec *section, v erlterm.Term, c *Config) {
	l, ok := v.(erlterm.List)
	if !ok || l.Tail != nil {
		d.errorf(v.Pos(), "%s: expected a list of {Key, Value} tuples, got %s", sec.name, kind(v))
		return
	}
	seen := map[string]erlterm.Pos{}
	for _, e := range l.Elems {
		t, ok := e.(erlterm.Tuple)
		if !ok || len(t.Elems) != 2 {
			d.errorf(e.Pos(), "%s: expected a {Key, Value} tuple, got %s", sec.name, kind(e))
			continue
		}
		name, ok := t.Elems[0].(erlterm.Atom)
		if !ok {
			d.errorf(t.Elems[0].Pos(), "%s: expected a key (an atom), got %s", sec.name, kind(t.Elems[0]))
			continue
		}
		field := sec.name + "." + name.Name
		k := sec.findKey(name.Name)
		if k == nil {
			var names []string
			for _, k := range sec.keys {
				names = append(names, k.name)
			}
			d.errorf(name.At, "%s.%s: unknown key%s (the keys of %s are %s)", sec.name,
				erlterm.FormatFlat(name), didYouMean(name.Name, names), sec.name, strings.Join(names, ", "))
			continue
		}
		if first, dup := seen[name.Name]; dup {
			d.errorf(name.At, "%s: repeated key (first at %v)", field, first)
			continue
		}
		seen[name.Name] = name.At
		d.o.pos[field] = t.Elems[1].Pos()
		if !k.decode(d, field, t.Elems[1], c) {
			d.o.bad[field] = true
		}
	}
}

func (d *decoder) applyEnv(lookupEnv func(string) (string, bool), c *Config) {
	if lookupEnv == nil {
		return
	}
	set := func(env, field string, dst func(string)) {
		if v, ok := lookupEnv(env); ok {
			dst(v)
			d.o.env[field] = env
			delete(d.o.bad, field)
		}
	}
	set(EnvNode, "node.name", func(v string) { c.Node.Name = v })
	set(EnvCookie, "node.cookie", func(v string) { c.Node.Cookie = Secret(v) })
	set(EnvDSN, "store.dsn", func(v string) { c.Store.DSN = v })
}

// Value decoders. Each reports a wrong value at its position and returns
// false. Values are quoted in messages only where they cannot be secrets.

func (d *decoder) mismatch(field string, v erlterm.Term, want string) bool {
	d.errorf(v.Pos(), "%s: expected %s, got %s", field, want, show(v))
	return false
}

// text returns the string in a String or a Binary.
func text(v erlterm.Term) (string, bool) {
	switch v := v.(type) {
	case erlterm.String:
		return v.Value, true
	case erlterm.Binary:
		if utf8.Valid(v.Value) {
			return string(v.Value), true
		}
	}
	return "", false
}

func (d *decoder) str(field string, v erlterm.Term, dst *string) bool {
	s, ok := text(v)
	if !ok {
		return d.mismatch(field, v, "a string")
	}
	*dst = s
	return true
}

// secret is str for a secret: an atom is accepted too (Erlang cookies are
// atoms), and the message shows only the kind of a wrong value.
func (d *decoder) secret(field string, v erlterm.Term, dst *Secret) bool {
	if a, ok := v.(erlterm.Atom); ok {
		*dst = Secret(a.Name)
		return true
	}
	s, ok := text(v)
	if !ok {
		d.errorf(v.Pos(), "%s: expected a string, got %s", field, kind(v))
		return false
	}
	*dst = Secret(s)
	return true
}

func (d *decoder) int(field string, v erlterm.Term, dst *int) bool {
	lim := intLimits[field]
	n, ok := v.(erlterm.Integer)
	if !ok {
		want := "a positive integer"
		if lim.min <= 0 {
			want = "a non-negative integer"
		}
		if strings.HasSuffix(field, "_ms") {
			want += " of milliseconds"
		}
		return d.mismatch(field, v, want)
	}
	i, ok := n.Int64()
	if !ok || i < math.MinInt32 || i > math.MaxInt32 {
		d.errorf(v.Pos(), "%s: must be between %d and %d, got %s", field, lim.min, lim.max, show(v))
		return false
	}
	*dst = int(i)
	return true
}

func (d *decoder) float(field string, v erlterm.Term, dst *float64) bool {
	switch n := v.(type) {
	case erlterm.Float:
		*dst = n.Value
		return true
	case erlterm.Integer:
		i, ok := n.Int64()
		if !ok || i < -1<<53 || i > 1<<53 {
			d.errorf(v.Pos(), "%s: must be greater than 0 and at most %g, got %s", field, floatMax, show(v))
			return false
		}
		*dst = float64(i)
		return true
	}
	return d.mismatch(field, v, "a positive number")
}

func (d *decoder) bool(field string, v erlterm.Term, dst *bool) bool {
	if a, ok := v.(erlterm.Atom); ok && (a.Name == "true" || a.Name == "false") {
		*dst = a.Name == "true"
		return true
	}
	return d.mismatch(field, v, "true or false")
}

func (d *decoder) enum(field string, v erlterm.Term, dst *string, values []string) bool {
	if a, ok := v.(erlterm.Atom); ok {
		for _, x := range values {
			if a.Name == x {
				*dst = x
				return true
			}
		}
	}
	return d.mismatch(field, v, "one of the atoms "+strings.Join(values, ", "))
}

func (d *decoder) strList(field string, v erlterm.Term, dst *[]string) bool {
	l, ok := v.(erlterm.List)
	if !ok || l.Tail != nil {
		return d.mismatch(field, v, "a list of strings")
	}
	var out []string
	good := true
	for k, e := range l.Elems {
		s, ok := text(e)
		if !ok {
			d.errorf(e.Pos(), "%s: expected a list of strings, but element %d is %s", field, k+1, show(e))
			good = false
			continue
		}
		d.o.pos[fmt.Sprintf("%s#%d", field, k)] = e.Pos()
		out = append(out, s)
	}
	if good {
		*dst = out
	}
	return good
}

// tls decodes [{cert, Path}, {key, Path}]; dist_tls (allowBool) also takes
// false and true, gateway.tls takes none and false.
func (d *decoder) tls(field string, v erlterm.Term, dst **TLSFiles, allowBool bool) bool {
	want := "[{cert, Path}, {key, Path}] or none"
	if allowBool {
		want = "false, true or [{cert, Path}, {key, Path}]"
	}
	switch v := v.(type) {
	case erlterm.Atom:
		switch {
		case v.Name == "false" || v.Name == "none" && !allowBool:
			*dst = nil
			return true
		case v.Name == "true" && allowBool:
			*dst = &TLSFiles{}
			return true
		}
	case erlterm.List:
		if v.Tail != nil {
			break
		}
		var files TLSFiles
		seen := map[string]erlterm.Pos{}
		good := true
		for _, e := range v.Elems {
			t, ok := e.(erlterm.Tuple)
			var name erlterm.Atom
			if ok && len(t.Elems) == 2 {
				name, ok = t.Elems[0].(erlterm.Atom)
			}
			if !ok || len(t.Elems) != 2 || name.Name != "cert" && name.Name != "key" {
				d.errorf(e.Pos(), "%s: expected {cert, Path} or {key, Path}, got %s", field, show(e))
				good = false
				continue
			}
			if first, dup := seen[name.Name]; dup {
				d.errorf(e.Pos(), "%s: repeated %s (first at %v)", field, name.Name, first)
				good = false
				continue
			}
			seen[name.Name] = e.Pos()
			p := &files.Cert
			if name.Name == "key" {
				p = &files.Key
			}
			if d.str(field+"."+name.Name, t.Elems[1], p) && *p == "" {
				d.errorf(t.Elems[1].Pos(), "%s.%s: must not be empty", field, name.Name)
				good = false
			} else if *p == "" {
				good = false
			}
		}
		for _, need := range []string{"cert", "key"} {
			if _, ok := seen[need]; !ok && good {
				d.errorf(v.Pos(), "%s: missing {%s, Path}", field, need)
				good = false
			}
		}
		if good {
			*dst = &files
		}
		return good
	}
	return d.mismatch(field, v, want)
}

// auth decodes dev or {jwt, Secret}. Its messages never show the value.
func (d *decoder) auth(field string, v erlterm.Term, dst *Auth) bool {
	switch v := v.(type) {
	case erlterm.Atom:
		switch v.Name {
		case "dev":
			*dst = Auth{Mode: "dev"}
			return true
		case "jwt":
			d.errorf(v.At, "%s: jwt needs a secret: write {auth, {jwt, <<\"...\">>}}", field)
			return false
		}
	case erlterm.Tuple:
		if len(v.Elems) == 2 {
			if a, ok := v.Elems[0].(erlterm.Atom); ok && a.Name == "jwt" {
				s, ok := text(v.Elems[1])
				if !ok {
					d.errorf(v.Elems[1].Pos(), "%s: the jwt secret must be a string, got %s", field, kind(v.Elems[1]))
					return false
				}
				*dst = Auth{Mode: "jwt", Secret: Secret(s)}
				return true
			}
		}
	}
	d.errorf(v.Pos(), "%s: expected dev or {jwt, Secret}, got %s", field, kind(v))
	return false
}

// show renders a value for a message: its text if short, else its kind.
func show(v erlterm.Term) string {
	s := erlterm.FormatFlat(v)
	if utf8.RuneCountInString(s) <= 60 {
		return s
	}
	return kind(v)
}

// kind describes a value without showing it.
func kind(v erlterm.Term) string {
	switch v := v.(type) {
	case erlterm.Atom:
		return "an atom"
	case erlterm.String:
		return "a string"
	case erlterm.Binary:
		return "a binary"
	case erlterm.Integer:
		return "an integer"
	case erlterm.Float:
		return "a float"
	case erlterm.Tuple:
		return fmt.Sprintf("a tuple of %d elements", len(v.Elems))
	case erlterm.List:
		if v.Tail != nil {
			return "an improper list"
		}
		return fmt.Sprintf("a list of %d elements", len(v.Elems))
	case erlterm.Map:
		return "a map"
	}
	return "nothing"
}

// didYouMean suggests the name closest to a misspelt one, if one is
// within two edits.
func didYouMean(name string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if dist := editDistance(name, n); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
