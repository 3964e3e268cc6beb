package board

import (
	"reflect"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/lib"
)

// Every cross-node message survives ETF encoding as the same Go value.
func TestCrossNodeMessagesRoundTrip(t *testing.T) {
	pid := etf.Pid{Node: "a@127.0.0.1", ID: 1001, Creation: 3}
	msgs := []any{
		Locate{Board: "b", ReplyTo: pid, Tag: 1, Hops: 1},
		Located{Board: "b", Pid: pid, Tag: 2},
		Join{Member: pid, User: "u", Since: -1, Quiet: true, Tag: 3},
		Joined{Board: "b", Actor: pid, Seq: 9, Snapshot: []byte(`{"entities":[]}`), Replay: PackFrames([][]byte{[]byte("x"), []byte("y")}), Replayed: true, Users: []string{"u", "v"}, Tag: 4},
		Joined{Board: "b", Actor: pid, Seq: 0, Replay: []byte{}, Users: []string{}, Tag: 5},
		Leave{Member: pid},
		Op{Member: pid, User: "u", OpID: "o", Op: []byte(`{"kind":"chat","text":"hi"}`), Tag: 6},
		Ack{Board: "b", OpID: "o", Seq: 3, Dup: true, Tag: 7},
		Failed{Board: "b", Code: "bad_op", Msg: "m", Tag: 8},
		Event{Board: "b", Seq: 4, Frame: []byte(`{"t":"ev"}`)},
		Presence{Board: "b", Joins: []string{"u"}, Leaves: []string{}},
		Events{Board: "b", First: 7, Frames: PackFrames([][]byte{[]byte("a"), []byte("b")})},
		FanoutEvents{Members: ToLocalIDs([]etf.Pid{pid}), Board: "b", First: 7, Frames: []byte("x")},
		FanoutEvent{Members: ToLocalIDs([]etf.Pid{pid, pid}), Board: "b", Seq: 5, Frame: []byte("f")},
		FanoutPresence{Members: ToLocalIDs([]etf.Pid{pid}), Board: "b", Joins: []string{}, Leaves: []string{"u"}},
	}
	for _, m := range msgs {
		buf := lib.TakeBuffer()
		if err := etf.Encode(m, buf, etf.EncodeOptions{FlagBigPidRef: true}); err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
		got, _, err := etf.Decode(buf.B, nil, etf.DecodeOptions{FlagBigPidRef: true})
		lib.ReleaseBuffer(buf)
		if err != nil {
			t.Fatalf("decode %T: %v", m, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(m)) {
			t.Fatalf("%T: sent %#v, got %#v", m, m, got)
		}
	}
}

// normalize treats nil and empty slices alike: ETF has one empty list.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	out := reflect.New(rv.Type()).Elem()
	out.Set(rv)
	for i := 0; i < out.NumField(); i++ {
		f := out.Field(i)
		if f.Kind() == reflect.Slice && f.Len() == 0 {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return out.Interface()
}
