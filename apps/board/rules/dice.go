package rules

import "strings"

// Dice is a parsed dice expression [N]dS[+K|-K]: Count dice of Sides sides,
// plus Mod (which is negative for -K).
type Dice struct {
	Count int // N, 1..100, 1 when absent
	Sides int // S, 2..1000
	Mod   int // K or -K, -1000..1000
}

// Bounds of the dice grammar.
const (
	MaxDiceCount = 100
	MinDiceSides = 2
	MaxDiceSides = 1000
	MaxDiceMod   = 1000
)

// ParseDice parses a dice expression. The grammar is exact: a lowercase 'd',
// decimal numbers without sign, spaces or leading zeros ("0" alone is the
// only number that may start with 0, and only K may be 0), an optional
// modifier with '+' or '-'. So d20, 2d6+1, 3d8-2, d6+0 are valid and D20,
// 02d6, d06, 2d6+01, 2d6+, 2 d6, 1d6+1+1, 0d6, 101d6, d1, d1001 and d6+1001
// are not.
func ParseDice(s string) (Dice, bool) {
	d := Dice{Count: 1}
	i := strings.IndexByte(s, 'd')
	if i < 0 {
		return Dice{}, false
	}
	if i > 0 {
		n, ok := parseDec(s[:i], 1, MaxDiceCount)
		if !ok {
			return Dice{}, false
		}
		d.Count = n
	}
	rest := s[i+1:]
	sides := rest
	if j := strings.IndexAny(rest, "+-"); j >= 0 {
		sides = rest[:j]
		k, ok := parseDec(rest[j+1:], 0, MaxDiceMod)
		if !ok {
			return Dice{}, false
		}
		if rest[j] == '-' {
			k = -k
		}
		d.Mod = k
	}
	n, ok := parseDec(sides, MinDiceSides, MaxDiceSides)
	if !ok {
		return Dice{}, false
	}
	d.Sides = n
	return d, true
}

// parseDec parses a canonical decimal number (no sign, no leading zero) in
// lo..hi.
func parseDec(s string, lo, hi int) (int, bool) {
	if len(s) == 0 || len(s) > 4 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v < lo || v > hi {
		return 0, false
	}
	return v, true
}
