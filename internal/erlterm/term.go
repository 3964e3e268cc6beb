package erlterm

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
)

// Pos is a position in a source file. Line and Col are 1-based; Col counts
// runes (Unicode code points), not bytes, so a tab or an "é" is one column.
// The zero Pos means "no position".
type Pos struct {
	Line, Col int
}

// IsValid reports whether p is a real position.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Before reports whether p comes before q in the file.
func (p Pos) Before(q Pos) bool {
	return p.Line < q.Line || p.Line == q.Line && p.Col < q.Col
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// Term is an Erlang term read from text: one of Atom, String, Binary,
// Integer, Float, Tuple, List and Map. Each carries the position of its
// first character in the field At. The set is closed: a type switch over
// those eight is exhaustive.
type Term interface {
	Pos() Pos
	// String renders the term with Format.
	String() string
	term()
}

// Atom is an atom, bare (foo_bar@x) or quoted ('hello world').
type Atom struct {
	Name string
	At   Pos
}

// String is a double-quoted string, which Erlang reads as a list of
// character codes. Value is the text, UTF-8 encoded. Adjacent string
// literals ("ab" "cd") are one String, as in Erlang.
type String struct {
	Value string
	At    Pos
}

// Binary is a binary literal: <<>>, <<"text">>, <<"text"/utf8>>,
// <<1,2,3>> or any mix of such segments. Value holds the bytes; nil and
// empty are the same binary.
type Binary struct {
	Value []byte
	At    Pos
}

// Integer is an integer of any size: 42, -7, 16#FF, 2#1010, 1_000, $c.
// A nil Value means zero.
type Integer struct {
	Value *big.Int
	At    Pos
}

// Float is a float: 1.5, -2.0e3. Parse never produces NaN or an infinity;
// Erlang has no text for them.
type Float struct {
	Value float64
	At    Pos
}

// Tuple is {E1, E2, ...}.
type Tuple struct {
	Elems []Term
	At    Pos
}

// List is [E1, E2, ...] or, with a non-nil Tail, the improper list
// [E1, E2, ... | Tail]. Parse normalises as Erlang does: [1 | [2]] is read
// as [1, 2], [1 | "ab"] as [1, 97, 98] and [1 | []] as [1], so a parsed
// Tail is never a List or a String, and a non-nil Tail comes with at least
// one element.
type List struct {
	Elems []Term
	Tail  Term
	At    Pos
}

// Map is #{K1 => V1, ...}. Pairs keep the source order; a repeated key is
// kept too (Erlang keeps the last one).
type Map struct {
	Pairs []MapPair
	At    Pos
}

// MapPair is one Key => Value association of a Map.
type MapPair struct {
	Key, Value Term
}

func (t Atom) Pos() Pos    { return t.At }
func (t String) Pos() Pos  { return t.At }
func (t Binary) Pos() Pos  { return t.At }
func (t Integer) Pos() Pos { return t.At }
func (t Float) Pos() Pos   { return t.At }
func (t Tuple) Pos() Pos   { return t.At }
func (t List) Pos() Pos    { return t.At }
func (t Map) Pos() Pos     { return t.At }

func (t Atom) String() string    { return Format(t) }
func (t String) String() string  { return Format(t) }
func (t Binary) String() string  { return Format(t) }
func (t Integer) String() string { return Format(t) }
func (t Float) String() string   { return Format(t) }
func (t Tuple) String() string   { return Format(t) }
func (t List) String() string    { return Format(t) }
func (t Map) String() string     { return Format(t) }

func (Atom) term()    {}
func (String) term()  {}
func (Binary) term()  {}
func (Integer) term() {}
func (Float) term()   {}
func (Tuple) term()   {}
func (List) term()    {}
func (Map) term()     {}

// NewInt returns the Integer v, without a position.
func NewInt(v int64) Integer { return Integer{Value: big.NewInt(v)} }

// Int64 returns the value as an int64, and false if it does not fit.
func (t Integer) Int64() (int64, bool) {
	if t.Value == nil {
		return 0, true
	}
	if !t.Value.IsInt64() {
		return 0, false
	}
	return t.Value.Int64(), true
}

func (t Integer) big() *big.Int {
	if t.Value == nil {
		return new(big.Int)
	}
	return t.Value
}

// IsProper reports whether the list is a proper list (no tail).
func (t List) IsProper() bool { return t.Tail == nil }

// Equal reports whether a and b are the same term, ignoring positions.
// Floats are equal when their bits are (so -0.0 differs from 0.0). A
// String and the List of its character codes are different Go values and
// not Equal, though Erlang would call them the same term.
func Equal(a, b Term) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case Atom:
		b, ok := b.(Atom)
		return ok && a.Name == b.Name
	case String:
		b, ok := b.(String)
		return ok && a.Value == b.Value
	case Binary:
		b, ok := b.(Binary)
		return ok && bytes.Equal(a.Value, b.Value)
	case Integer:
		b, ok := b.(Integer)
		return ok && a.big().Cmp(b.big()) == 0
	case Float:
		b, ok := b.(Float)
		return ok && math.Float64bits(a.Value) == math.Float64bits(b.Value)
	case Tuple:
		b, ok := b.(Tuple)
		return ok && equalSlices(a.Elems, b.Elems)
	case List:
		b, ok := b.(List)
		return ok && equalSlices(a.Elems, b.Elems) && Equal(a.Tail, b.Tail)
	case Map:
		b, ok := b.(Map)
		if !ok || len(a.Pairs) != len(b.Pairs) {
			return false
		}
		for i := range a.Pairs {
			if !Equal(a.Pairs[i].Key, b.Pairs[i].Key) || !Equal(a.Pairs[i].Value, b.Pairs[i].Value) {
				return false
			}
		}
		return true
	}
	return false
}

func equalSlices(a, b []Term) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
