package rules

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Snapshot returns the board as {"entities":[...]}: every entity with its
// five fields (id, asset, pos, rot, props), sorted by id, props keys sorted,
// compact. Equal states give byte-identical snapshots.
func (s *State) Snapshot() json.RawMessage {
	if s.dirty || len(s.sorted) != len(s.ents) {
		s.sorted = s.sorted[:0]
		for id, e := range s.ents {
			s.sorted = append(s.sorted, idEntity{id, e})
		}
		slices.SortFunc(s.sorted, func(a, b idEntity) int { return strings.Compare(a.id, b.id) })
		s.dirty = false
	}
	b := make([]byte, 0, max(s.sizeHint+s.sizeHint/8, 64))
	b = append(b, `{"entities":[`...)
	var keys []string
	for i, ie := range s.sorted {
		if i > 0 {
			b = append(b, ',')
		}
		id, e := ie.id, ie.e
		b = append(b, `{"id":"`...)
		b = append(b, id...) // ids need no escaping
		b = append(b, `","asset":`...)
		b = appendString(b, e.asset)
		b = append(b, `,"pos":[`...)
		b = appendFloat(b, e.pos[0])
		b = append(b, ',')
		b = appendFloat(b, e.pos[1])
		b = append(b, ',')
		b = appendFloat(b, e.pos[2])
		b = append(b, `],"rot":`...)
		b = appendFloat(b, e.rot)
		b = append(b, `,"props":`...)
		keys = keys[:0]
		for k := range e.props {
			keys = append(keys, k)
		}
		b = appendProps(b, e.props, keys)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	s.sizeHint = len(b)
	return b
}

// appendProps writes p as a compact object with sorted keys; keys is a
// scratch slice holding p's keys.
func appendProps(b []byte, p map[string]json.RawMessage, keys []string) []byte {
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = append(b, p[k]...)
	}
	return append(b, '}')
}

// LoadSnapshot reads a snapshot that Snapshot wrote. It checks the structure
// as strictly as Decode checks a put (ids, types, finite numbers, each id
// once) but not the limits: a board stored under larger limits still loads,
// and only its later ops meet the new ones. Errors wrap ErrBadSnapshot.
func LoadSnapshot(data []byte, lim Limits) (*State, error) {
	c, err := compactStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	top, ok := asObject(c)
	if !ok {
		return nil, fmt.Errorf("%w: expected a JSON object", ErrBadSnapshot)
	}
	raw, ok := top["entities"]
	if !ok {
		return nil, fmt.Errorf("%w: entities: missing", ErrBadSnapshot)
	}
	items, ok := asList(raw)
	if !ok {
		return nil, fmt.Errorf("%w: entities: expected a list", ErrBadSnapshot)
	}
	s := NewState(lim)
	s.ents = make(map[string]*entity, len(items))
	d := decoder{kind: "snapshot"}
	for i, it := range items {
		pe, perr := d.putEntity(it, fmt.Sprintf("entities[%d]", i), 0)
		if perr != nil {
			return nil, fmt.Errorf("%w: %s", ErrBadSnapshot, perr.Msg)
		}
		if _, dup := s.ents[pe.id]; dup {
			return nil, fmt.Errorf("%w: entities[%d].id: %s listed twice", ErrBadSnapshot, i, pe.id)
		}
		s.ents[pe.id] = &entity{asset: pe.asset, pos: pe.pos, rot: pe.rot, props: pe.props, propsBody: pe.propsBody}
	}
	s.dirty = true
	s.sizeHint = len(c)
	return s, nil
}
