package rules

import (
	"encoding/json"
	"testing"
)

func TestParseDice(t *testing.T) {
	valid := map[string]Dice{
		"d20":           {1, 20, 0},
		"1d20":          {1, 20, 0},
		"2d6+1":         {2, 6, 1},
		"3d8-2":         {3, 8, -2},
		"d2":            {1, 2, 0},
		"d1000":         {1, 1000, 0},
		"100d6":         {100, 6, 0},
		"d6+0":          {1, 6, 0},
		"d6-0":          {1, 6, 0},
		"d6+1000":       {1, 6, 1000},
		"d6-1000":       {1, 6, -1000},
		"100d1000+1000": {100, 1000, 1000},
		"10d10":         {10, 10, 0},
	}
	for s, want := range valid {
		got, ok := ParseDice(s)
		if !ok || got != want {
			t.Errorf("ParseDice(%q) = %+v, %v; want %+v", s, got, ok, want)
		}
	}
	invalid := []string{
		"", "d", "20", "d0", "d1", "d1001", "d9999", "d10000", "0d6", "101d6", "1000d6", "d6+1001", "d6-1001",
		"D20", "2D6", " d20", "d20 ", "2 d6", "d6 + 1", "2d6+", "2d6-", "+d6", "-1d6", "d+6", "d-6",
		"02d6", "d06", "d6+01", "d6+00", "00d6", "2d6+1+1", "2d6+-1", "2dd6", "2d6d6", "d6d", "dd6",
		"1.5d6", "d6.0", "d6+1.5", "1e2d6", "٣d6", "d２０", "d20\n", "2d6*2", "d%", "d6+1000000000000000000000",
		"99999999999999999999d6",
	}
	for _, s := range invalid {
		if d, ok := ParseDice(s); ok {
			t.Errorf("ParseDice(%q) = %+v, want invalid", s, d)
		}
	}
}

func TestRollResults(t *testing.T) {
	rnd := newRand()
	for _, dice := range []string{"d20", "2d6+1", "3d8-2", "d2", "100d1000+1000", "d6-1000", "d1000"} {
		d, _ := ParseDice(dice)
		op := mustDecode(t, `{"kind":"roll","dice":"`+dice+`"}`)
		seenMin, seenMax := false, false
		for i := 0; i < 2000; i++ {
			res, err := NewState(Limits{}).Apply(op, rnd)
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Rolls []int `json:"rolls"`
				Total *int  `json:"total"`
			}
			if err := json.Unmarshal(res, &r); err != nil || r.Total == nil {
				t.Fatalf("result %s: %v", res, err)
			}
			if len(r.Rolls) != d.Count {
				t.Fatalf("%s: %d rolls", dice, len(r.Rolls))
			}
			sum := 0
			for _, v := range r.Rolls {
				if v < 1 || v > d.Sides {
					t.Fatalf("%s: roll %d out of 1..%d", dice, v, d.Sides)
				}
				seenMin = seenMin || v == 1
				seenMax = seenMax || v == d.Sides
				sum += v
			}
			if *r.Total != sum+d.Mod {
				t.Fatalf("%s: total %d, want %d", dice, *r.Total, sum+d.Mod)
			}
		}
		if d.Sides <= 20 && (!seenMin || !seenMax) {
			t.Errorf("%s: never rolled 1 or %d in 2000 tries", dice, d.Sides)
		}
	}
	// deterministic with a seeded source, working with the global one
	op := mustDecode(t, `{"kind":"roll","dice":"5d20"}`)
	a, _ := NewState(Limits{}).Apply(op, newRand())
	b, _ := NewState(Limits{}).Apply(op, newRand())
	if string(a) != string(b) {
		t.Errorf("same seed, different rolls: %s %s", a, b)
	}
	if res, err := NewState(Limits{}).Apply(op, nil); err != nil || !json.Valid(res) {
		t.Errorf("nil rand: %s %v", res, err)
	}
	want := `{"rolls":[`
	if string(a[:len(want)]) != want {
		t.Errorf("result shape %s", a)
	}
}
