// Package erltest checks this project's reading of Erlang term text against
// a real erl: it runs file:consult/1 on files and returns, for each, whether
// erl accepted it and a canonical rendering of what it read, which Canon
// produces from erlterm terms too. It is for tests only.
package erltest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/internal/erlterm"
)

// Erl returns the path of erl. When erl is not on PATH it fails the test if
// the environment variable CI is set, and skips it otherwise.
func Erl(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("erl")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("erl is not on PATH and CI is set: %v", err)
		}
		tb.Skipf("erl is not on PATH (set CI to make this a failure): %v", err)
	}
	return path
}

// Result is what erl made of one file.
type Result struct {
	File string
	// OK is true when file:consult returned {ok, Terms}.
	OK bool
	// Canon is Canon of the terms read, when OK.
	Canon string
	// Reason is the error term, written with ~w, when not OK.
	Reason string
}

// CanonFun binds C, an Erlang fun that renders a term the way Canon
// renders Go terms; other tests that compare erl's terms with Go's use it.
const CanonFun = `C = fun C(T) when is_integer(T) -> ["i", integer_to_list(T)];
        C(T) when is_float(T) -> <<B:64>> = <<T/float>>, ["f", integer_to_list(B)];
        C(T) when is_atom(T) -> ["a", io_lib:write(atom_to_list(T))];
        C(T) when is_binary(T) -> ["b", io_lib:write(binary_to_list(T))];
        C(T) when is_tuple(T) -> ["{", lists:join(",", [C(E) || E <- tuple_to_list(T)]), "}"];
        C(T) when is_map(T) ->
            Ps = [lists:flatten([C(K), "=>", C(V)]) || {K, V} <- maps:to_list(T)],
            ["#{", lists:join(",", lists:sort(Ps)), "}"];
        C([]) -> "[]";
        C([H | T]) -> ["[", C(H), "|", C(T), "]"]
    end,
`

// canonErl is the Erlang side of Canon. Every number, atom and binary is
// written as integers so that nothing depends on how erl prints text;
// floats by their IEEE 754 bits; lists as cons cells, so strings and
// improper lists need no special case; map pairs sorted by their text.
const canonErl = "\n" + CanonFun + `Ascii = fun(S) -> [if X > 126 -> $?; true -> X end || X <- lists:flatten(S)] end,
Run = fun(File, I) ->
        case file:consult(File) of
            {ok, Ts} -> io:put_chars([integer_to_list(I), " ok ", C(Ts), "\n"]);
            {error, R} -> io:put_chars([integer_to_list(I), " error ", Ascii(io_lib:write(R)), "\n"])
        end,
        I + 1
    end,
lists:foldl(Run, 0, init:get_plain_arguments()),
halt().
`

// Consult runs one erl that calls file:consult/1 on each file, and returns
// the results in the order of files. It fails the test if erl misbehaves,
// and skips or fails it (see Erl) if there is no erl.
func Consult(tb testing.TB, files ...string) []Result {
	tb.Helper()
	erl := Erl(tb)
	if len(files) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"-noshell", "-eval", canonErl, "-extra"}, files...)
	cmd := exec.CommandContext(ctx, erl, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("erl: %v\nstderr: %s\nstdout: %s", err, stderr.String(), stdout.String())
	}
	results := make([]Result, len(files))
	seen := make([]bool, len(files))
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 256<<20)
	for sc.Scan() {
		idx, rest, _ := strings.Cut(sc.Text(), " ")
		status, payload, _ := strings.Cut(rest, " ")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= len(files) {
			tb.Fatalf("erl: unexpected output line %q\nstderr: %s", sc.Text(), stderr.String())
		}
		seen[i] = true
		results[i] = Result{File: files[i], OK: status == "ok"}
		if results[i].OK {
			results[i].Canon = payload
		} else {
			results[i].Reason = payload
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("erl: reading output: %v", err)
	}
	for i, ok := range seen {
		if !ok {
			tb.Fatalf("erl: no result for %s\nstderr: %s", files[i], stderr.String())
		}
	}
	return results
}

// Canon renders terms as the erl side of Consult renders what
// file:consult returned, so that equal strings mean equal Erlang terms.
func Canon(terms []erlterm.Term) string {
	var b strings.Builder
	for _, t := range terms {
		b.WriteString("[")
		canon(&b, t)
		b.WriteString("|")
	}
	b.WriteString("[]")
	b.WriteString(strings.Repeat("]", len(terms)))
	return b.String()
}

func ints[T ~int | ~byte | ~rune](b *strings.Builder, xs []T) {
	b.WriteByte('[')
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(x)))
	}
	b.WriteByte(']')
}

func canon(b *strings.Builder, t erlterm.Term) {
	switch t := t.(type) {
	case erlterm.Atom:
		b.WriteString("a")
		ints(b, []rune(t.Name))
	case erlterm.String:
		// A string is a list of character codes.
		rs := []rune(t.Value)
		for _, r := range rs {
			fmt.Fprintf(b, "[i%d|", r)
		}
		b.WriteString("[]")
		b.WriteString(strings.Repeat("]", len(rs)))
	case erlterm.Binary:
		b.WriteString("b")
		ints(b, t.Value)
	case erlterm.Integer:
		b.WriteString("i")
		if t.Value == nil {
			b.WriteString("0")
		} else {
			b.WriteString(t.Value.String())
		}
	case erlterm.Float:
		b.WriteString("f")
		b.WriteString(strconv.FormatUint(math.Float64bits(t.Value), 10))
	case erlterm.Tuple:
		b.WriteString("{")
		for i, e := range t.Elems {
			if i > 0 {
				b.WriteString(",")
			}
			canon(b, e)
		}
		b.WriteString("}")
	case erlterm.List:
		for _, e := range t.Elems {
			b.WriteString("[")
			canon(b, e)
			b.WriteString("|")
		}
		if t.Tail == nil {
			b.WriteString("[]")
		} else {
			canon(b, t.Tail)
		}
		b.WriteString(strings.Repeat("]", len(t.Elems)))
	case erlterm.Map:
		// Erlang keeps the last of repeated keys; keys compare exactly.
		last := map[string]string{}
		for _, kv := range t.Pairs {
			var k, v strings.Builder
			canon(&k, kv.Key)
			canon(&v, kv.Value)
			last[k.String()] = v.String()
		}
		pairs := make([]string, 0, len(last))
		for k, v := range last {
			pairs = append(pairs, k+"=>"+v)
		}
		sort.Strings(pairs)
		b.WriteString("#{")
		b.WriteString(strings.Join(pairs, ","))
		b.WriteString("}")
	default:
		fmt.Fprintf(b, "?%T", t)
	}
}
