package rules

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Op kinds.
const (
	KindPut   = "put"
	KindMove  = "move"
	KindPatch = "patch"
	KindDel   = "del"
	KindChat  = "chat"
	KindRoll  = "roll"
)

// Op is a decoded op whose fields have all been checked. Only Decode makes
// one; an Op is never changed after it, so it may be applied to several
// states and read from several goroutines.
type Op struct {
	// Kind is one of the Kind* constants.
	Kind string
	// Raw is the op exactly as the client sent it, compacted (unknown extra
	// fields included). The server echoes it as the `op` of the `ev`.
	Raw json.RawMessage

	ents   []putEntity                // put
	ids    []string                   // del
	entity string                     // move, patch
	pos    [3]float64                 // move
	rot    float64                    // move
	hasRot bool                       // move
	props  map[string]json.RawMessage // patch; a null value removes
	text   string                     // chat
	dice   Dice                       // roll
}

type putEntity struct {
	id, asset string
	pos       [3]float64
	rot       float64
	props     map[string]json.RawMessage
	propsBody int // see entity.propsBody
}

// Decode checks an op and returns it decoded. Every check that does not
// depend on the board happens here, so a malformed field is bad_op even when
// the entity it names does not exist. raw must be one JSON object; extra
// fields are ignored (and kept in Raw). The error is always an *Error of code
// bad_op, whose Msg starts with the kind (or "op") and the field at fault.
func Decode(raw []byte, lim Limits) (*Op, error) {
	lim = lim.withDefaults()
	c, err := compactStrict(raw)
	if err != nil {
		return nil, badOp("op: " + err.Error())
	}
	top, ok := asObject(c)
	if !ok {
		return nil, badOp("op: expected a JSON object")
	}
	kraw, ok := top["kind"]
	if !ok {
		return nil, badOp("op: kind: missing")
	}
	kind, ok := asString(kraw)
	if !ok {
		return nil, badOp("op: kind: expected a string")
	}
	op := &Op{Kind: kind, Raw: c}
	d := decoder{kind: kind, f: top}
	switch kind {
	case KindPut:
		err = d.put(op, lim)
	case KindMove:
		err = d.move(op)
	case KindPatch:
		err = d.patch(op)
	case KindDel:
		err = d.del(op)
	case KindChat:
		err = d.chat(op, lim)
	case KindRoll:
		err = d.roll(op)
	default:
		return nil, badOp("op: unknown kind " + quoteShort(kind) + " (want put, move, patch, del, chat or roll)")
	}
	if err != nil {
		return nil, err
	}
	return op, nil
}

// decoder reads the fields of one op object; kind prefixes its messages.
type decoder struct {
	kind string
	f    map[string]json.RawMessage
}

func (d decoder) errf(field, format string, args ...any) *Error {
	return badOp(d.kind + ": " + field + ": " + fmt.Sprintf(format, args...))
}

// id reads a required entity id from f[name]; field names it in messages.
func (d decoder) id(f map[string]json.RawMessage, name, field string) (string, *Error) {
	raw, ok := f[name]
	if !ok {
		return "", d.errf(field, "missing")
	}
	s, ok := asString(raw)
	if !ok {
		return "", d.errf(field, "expected a string id")
	}
	if !ValidID(s) {
		return "", d.errf(field, "invalid id %s (want 1 to 64 of A-Z a-z 0-9 _ -)", quoteShort(s))
	}
	return s, nil
}

func (d decoder) pos(f map[string]json.RawMessage, field string) ([3]float64, *Error) {
	raw, ok := f["pos"]
	if !ok {
		return [3]float64{}, d.errf(field, "missing")
	}
	p, ok := asPos(raw)
	if !ok {
		return p, d.errf(field, "expected three numbers")
	}
	return p, nil
}

// rot reads an optional rot; null is not a number.
func (d decoder) rot(f map[string]json.RawMessage, field string) (float64, bool, *Error) {
	raw, ok := f["rot"]
	if !ok {
		return 0, false, nil
	}
	r, ok := asNumber(raw)
	if !ok {
		return 0, false, d.errf(field, "expected a number")
	}
	return r, true, nil
}

func (d decoder) put(op *Op, lim Limits) error {
	raw, ok := d.f["entities"]
	if !ok {
		return d.errf("entities", "missing")
	}
	items, ok := asList(raw)
	if !ok {
		return d.errf("entities", "expected a list")
	}
	if len(items) > lim.MaxPutEntities {
		return d.errf("entities", "%d entities, limit %d", len(items), lim.MaxPutEntities)
	}
	op.ents = make([]putEntity, 0, len(items))
	for i, it := range items {
		e, err := d.putEntity(it, fmt.Sprintf("entities[%d]", i), lim.MaxPropsBytes)
		if err != nil {
			return err
		}
		op.ents = append(op.ents, e)
	}
	return nil
}

// putEntity reads one {"id","asset","pos","rot","props"} object. maxProps <=
// 0 means no props limit (LoadSnapshot).
func (d decoder) putEntity(raw json.RawMessage, at string, maxProps int) (putEntity, *Error) {
	var e putEntity
	f, ok := asObject(raw)
	if !ok {
		return e, d.errf(at, "expected an object")
	}
	var err *Error
	if e.id, err = d.id(f, "id", at+".id"); err != nil {
		return e, err
	}
	araw, ok := f["asset"]
	if !ok {
		return e, d.errf(at+".asset", "missing")
	}
	if e.asset, ok = asString(araw); !ok {
		return e, d.errf(at+".asset", "expected a string")
	}
	if e.pos, err = d.pos(f, at+".pos"); err != nil {
		return e, err
	}
	if e.rot, _, err = d.rot(f, at+".rot"); err != nil {
		return e, err
	}
	e.props = map[string]json.RawMessage{}
	if praw, ok := f["props"]; ok {
		if e.props, ok = asObject(praw); !ok {
			return e, d.errf(at+".props", "expected an object")
		}
		cloneValues(e.props)
	}
	e.propsBody = propsBody(e.props)
	if size := propsSize(len(e.props), e.propsBody); maxProps > 0 && size > maxProps {
		return e, d.errf(at+".props", "%d bytes, limit %d", size, maxProps)
	}
	return e, nil
}

func (d decoder) move(op *Op) error {
	var err *Error
	if op.entity, err = d.id(d.f, "entity", "entity"); err != nil {
		return err
	}
	if op.pos, err = d.pos(d.f, "pos"); err != nil {
		return err
	}
	if op.rot, op.hasRot, err = d.rot(d.f, "rot"); err != nil {
		return err
	}
	return nil
}

func (d decoder) patch(op *Op) error {
	var err *Error
	if op.entity, err = d.id(d.f, "entity", "entity"); err != nil {
		return err
	}
	raw, ok := d.f["props"]
	if !ok {
		return d.errf("props", "missing")
	}
	if op.props, ok = asObject(raw); !ok {
		return d.errf("props", "expected an object")
	}
	cloneValues(op.props)
	return nil
}

func (d decoder) del(op *Op) error {
	raw, ok := d.f["entities"]
	if !ok {
		return d.errf("entities", "missing")
	}
	items, ok := asList(raw)
	if !ok {
		return d.errf("entities", "expected a list of ids")
	}
	op.ids = make([]string, len(items))
	for i, it := range items {
		s, ok := asString(it)
		if !ok {
			return d.errf(fmt.Sprintf("entities[%d]", i), "expected a string id")
		}
		if !ValidID(s) {
			return d.errf(fmt.Sprintf("entities[%d]", i), "invalid id %s (want 1 to 64 of A-Z a-z 0-9 _ -)", quoteShort(s))
		}
		op.ids[i] = s
	}
	return nil
}

func (d decoder) chat(op *Op, lim Limits) error {
	raw, ok := d.f["text"]
	if !ok {
		return d.errf("text", "missing")
	}
	s, ok := asString(raw)
	if !ok {
		return d.errf("text", "expected a string")
	}
	// compactStrict has made sure s is valid UTF-8 without lone surrogates.
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return d.errf("text", "empty")
	}
	if n > lim.MaxChatChars {
		return d.errf("text", "%d characters, limit %d", n, lim.MaxChatChars)
	}
	op.text = s
	return nil
}

func (d decoder) roll(op *Op) error {
	raw, ok := d.f["dice"]
	if !ok {
		return d.errf("dice", "missing")
	}
	s, ok := asString(raw)
	if !ok {
		return d.errf("dice", "expected a string")
	}
	if op.dice, ok = ParseDice(s); !ok {
		return d.errf("dice", "invalid dice %s (want [N]dS[+K|-K] with N 1..100, S 2..1000, K 0..1000)", quoteShort(s))
	}
	return nil
}

// Entity returns the entity id that a move or patch names, "" for other kinds.
func (op *Op) Entity() string { return op.entity }

// Text returns the text of a chat, "" for other kinds.
func (op *Op) Text() string { return op.text }

// Dice returns the dice of a roll, the zero Dice for other kinds.
func (op *Op) Dice() Dice { return op.dice }
