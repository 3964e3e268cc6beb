package rules

import (
	"errors"
	"fmt"
)

// Limits are the configurable limits of the protocol's Boards section. A zero
// field means its default (see DefaultLimits).
type Limits struct {
	// MaxPutEntities is the most entities one put may list (default 1,000).
	MaxPutEntities int
	// MaxEntities is the most entities one board may hold (default 100,000).
	MaxEntities int
	// MaxPropsBytes is the most bytes of one entity's props, measured as the
	// compact JSON object that Snapshot writes for them (default 65,536).
	MaxPropsBytes int
	// MaxChatChars is the most Unicode characters (code points) of a chat
	// text (default 2,000).
	MaxChatChars int
}

// DefaultLimits returns the limits that PROTOCOL.md states as defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxPutEntities: 1000,
		MaxEntities:    100000,
		MaxPropsBytes:  65536,
		MaxChatChars:   2000,
	}
}

// Validate reports every negative field at once. Zero fields are valid: they
// mean the default.
func (l Limits) Validate() error {
	var errs []error
	check := func(name string, v int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%w: %s is %d, want > 0 (or 0 for the default)", ErrBadLimits, name, v))
		}
	}
	check("MaxPutEntities", l.MaxPutEntities)
	check("MaxEntities", l.MaxEntities)
	check("MaxPropsBytes", l.MaxPropsBytes)
	check("MaxChatChars", l.MaxChatChars)
	return errors.Join(errs...)
}

// withDefaults replaces zero (and, defensively, negative) fields by their
// defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxPutEntities <= 0 {
		l.MaxPutEntities = d.MaxPutEntities
	}
	if l.MaxEntities <= 0 {
		l.MaxEntities = d.MaxEntities
	}
	if l.MaxPropsBytes <= 0 {
		l.MaxPropsBytes = d.MaxPropsBytes
	}
	if l.MaxChatChars <= 0 {
		l.MaxChatChars = d.MaxChatChars
	}
	return l
}
