package erlterm

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a file, at a position. Error() renders it
// as "file:line:col: msg", leaving out the parts that are unknown (an empty
// File, a zero Pos).
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Pos.IsValid() {
		fmt.Fprintf(&b, "%d:%d:", e.Pos.Line, e.Pos.Col)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one file. Parse returns one (as an
// error) when anything is wrong; errors.As finds it and each *Error in it.
type ErrorList []*Error

// Error joins the errors' texts with newlines.
func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors, so errors.Is and errors.As look into each.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Err returns nil for an empty list and the list otherwise; use it to
// avoid returning a non-nil error interface holding an empty list.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Add appends an error at pos.
func (l *ErrorList) Add(file string, pos Pos, format string, args ...any) {
	*l = append(*l, &Error{File: file, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// Sort orders the list by file and position. Errors without a position
// (about the environment, say) go last, in their original order.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Pos.IsValid() != b.Pos.IsValid() {
			return a.Pos.IsValid()
		}
		if !a.Pos.IsValid() {
			return false
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Pos.Before(b.Pos)
	})
}
