package rules

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Entity is one thing on a board, as a snapshot lists it.
type Entity struct {
	ID    string                     `json:"id"`
	Asset string                     `json:"asset"`
	Pos   [3]float64                 `json:"pos"`
	Rot   float64                    `json:"rot"`
	Props map[string]json.RawMessage `json:"props"` // never nil; values compact
}

// entity is the stored form. Its props values are never changed in place
// (only replaced), so clones share them.
type entity struct {
	asset string
	pos   [3]float64
	rot   float64
	props map[string]json.RawMessage
	// propsBody is the sum, over props, of len(quoted key)+1+len(value): the
	// compact props object is 2+propsBody+(len(props)-1) bytes long.
	propsBody int
}

// State is the entities of one board. It is not safe for concurrent use, not
// even Snapshot (which keeps a cache): one goroutine owns a board's State.
type State struct {
	lim  Limits
	ents map[string]*entity
	// sorted holds the entities in id order when !dirty; only put of a new
	// id and del of an existing one make it dirty (an entity keeps its
	// pointer for as long as its id exists), so Snapshot after moves,
	// patches and replacing puts needs no sort and no map lookup.
	sorted   []idEntity
	dirty    bool
	sizeHint int // length of the last snapshot
}

// NewState returns an empty board with the given limits (zero fields mean
// the defaults).
func NewState(lim Limits) *State {
	return &State{lim: lim.withDefaults(), ents: map[string]*entity{}}
}

// Len returns the number of entities.
func (s *State) Len() int { return len(s.ents) }

// Limits returns the limits of s, defaults filled in.
func (s *State) Limits() Limits { return s.lim }

// Get returns a copy of one entity.
func (s *State) Get(id string) (Entity, bool) {
	e, ok := s.ents[id]
	if !ok {
		return Entity{}, false
	}
	props := make(map[string]json.RawMessage, len(e.props))
	for k, v := range e.props {
		props[k] = slices.Clone(v)
	}
	return Entity{ID: id, Asset: e.asset, Pos: e.pos, Rot: e.rot, Props: props}, true
}

type idEntity struct {
	id string
	e  *entity
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := &State{lim: s.lim, ents: make(map[string]*entity, len(s.ents)), dirty: true, sizeHint: s.sizeHint}
	for id, e := range s.ents {
		ce := *e
		ce.props = cloneProps(e.props)
		c.ents[id] = &ce
	}
	return c
}

func cloneProps(p map[string]json.RawMessage) map[string]json.RawMessage {
	c := make(map[string]json.RawMessage, len(p))
	for k, v := range p {
		c[k] = v // values are immutable
	}
	return c
}

// Apply applies a decoded op. It is atomic: on error s is unchanged. For a
// roll it returns the result, {"rolls":[..],"total":n}, drawn from rnd (the
// global source when rnd is nil); for other kinds nil. Errors are *Error:
// not_found when a move or patch names a missing entity, bad_op when the op
// would break a limit of the board (too many entities, props too large).
func (s *State) Apply(op *Op, rnd *rand.Rand) (json.RawMessage, error) {
	if op == nil {
		return nil, badOp("op: missing")
	}
	switch op.Kind {
	case KindPut:
		return nil, s.applyPut(op)
	case KindMove:
		e, ok := s.ents[op.entity]
		if !ok {
			return nil, notFound(op)
		}
		e.pos = op.pos
		if op.hasRot {
			e.rot = op.rot
		}
		return nil, nil
	case KindPatch:
		return nil, s.applyPatch(op)
	case KindDel:
		for _, id := range op.ids {
			if _, ok := s.ents[id]; ok {
				delete(s.ents, id)
				s.dirty = true
			}
		}
		return nil, nil
	case KindChat:
		return nil, nil
	case KindRoll:
		return roll(op.dice, rnd), nil
	}
	return nil, badOp("op: unknown kind " + quoteShort(op.Kind))
}

func notFound(op *Op) *Error {
	return &Error{Code: CodeNotFound, Msg: op.Kind + ": entity " + op.entity + " not found"}
}

func (s *State) applyPut(op *Op) error {
	if len(op.ents) > s.lim.MaxPutEntities {
		return badOp(fmt.Sprintf("put: entities: %d entities, limit %d", len(op.ents), s.lim.MaxPutEntities))
	}
	// Count the ids this put adds, each once.
	added := 0
	var seen map[string]struct{}
	if len(op.ents) > 1 {
		seen = make(map[string]struct{}, len(op.ents))
	}
	for i, pe := range op.ents {
		if size := propsSize(len(pe.props), pe.propsBody); size > s.lim.MaxPropsBytes {
			return badOp(fmt.Sprintf("put: entities[%d].props: %d bytes, limit %d", i, size, s.lim.MaxPropsBytes))
		}
		if _, ok := s.ents[pe.id]; ok {
			continue
		}
		if seen != nil {
			if _, dup := seen[pe.id]; dup {
				continue
			}
			seen[pe.id] = struct{}{}
		}
		added++
	}
	if n := len(s.ents) + added; n > s.lim.MaxEntities {
		return badOp(fmt.Sprintf("put: the board would have %d entities, limit %d", n, s.lim.MaxEntities))
	}
	// Nothing can fail from here on.
	if added > 0 {
		s.dirty = true
	}
	for _, pe := range op.ents {
		ne := entity{
			asset:     pe.asset,
			pos:       pe.pos,
			rot:       pe.rot,
			props:     cloneProps(pe.props), // the op may be applied elsewhere too
			propsBody: pe.propsBody,
		}
		if e, ok := s.ents[pe.id]; ok {
			*e = ne // keep the pointer: see State.sorted
		} else {
			s.ents[pe.id] = &ne
		}
	}
	return nil
}

func (s *State) applyPatch(op *Op) error {
	e, ok := s.ents[op.entity]
	if !ok {
		return notFound(op)
	}
	body, n := e.propsBody, len(e.props)
	for k, v := range op.props {
		if old, ok := e.props[k]; ok {
			body -= quotedLen(k) + 1 + len(old)
			n--
		}
		if !isNull(v) {
			body += quotedLen(k) + 1 + len(v)
			n++
		}
	}
	if size := propsSize(n, body); size > s.lim.MaxPropsBytes {
		return badOp(fmt.Sprintf("patch: props of entity %s would be %d bytes, limit %d", op.entity, size, s.lim.MaxPropsBytes))
	}
	for k, v := range op.props {
		if isNull(v) {
			delete(e.props, k)
		} else {
			e.props[k] = v
		}
	}
	e.propsBody = body
	return nil
}

// propsBody is the propsBody of an entity with these props.
func propsBody(p map[string]json.RawMessage) int {
	n := 0
	for k, v := range p {
		n += quotedLen(k) + 1 + len(v)
	}
	return n
}

// propsSize is the length of the compact props object of n props whose
// entries take body bytes.
func propsSize(n, body int) int {
	if n == 0 {
		return 2
	}
	return 2 + body + n - 1
}

func roll(d Dice, rnd *rand.Rand) json.RawMessage {
	intN := rand.IntN
	if rnd != nil {
		intN = rnd.IntN
	}
	b := make([]byte, 0, 24+5*d.Count)
	b = append(b, `{"rolls":[`...)
	total := d.Mod
	for i := 0; i < d.Count; i++ {
		r := 1 + intN(d.Sides)
		total += r
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(r), 10)
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	return append(b, '}')
}
