package otlpwire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestConsume(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 300)
	b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 1<<40)
	b = protowire.AppendTag(b, 3, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 7)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendString(b, "abc")
	b = protowire.AppendTag(b, 5, protowire.StartGroupType)
	b = protowire.AppendTag(b, 5, protowire.EndGroupType)
	b = protowire.AppendTag(b, 6, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)

	want := []Field{
		{Num: 1, Type: protowire.VarintType, X: 300},
		{Num: 2, Type: protowire.Fixed64Type, X: 1 << 40},
		{Num: 3, Type: protowire.Fixed32Type, X: 7},
		{Num: 4, Type: protowire.BytesType, V: []byte("abc")},
		{Num: 5, Type: protowire.StartGroupType},
		{Num: 6, Type: protowire.VarintType, X: 1},
	}
	var got []Field
	for f, rest, ok := Next(b); ok; f, rest, ok = Next(rest) {
		got = append(got, f)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d fields, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Num != w.Num || g.Type != w.Type || g.X != w.X || !bytes.Equal(g.V, w.V) {
			t.Errorf("field %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestConsumeMalformed(t *testing.T) {
	tests := map[string][]byte{
		"empty":           nil,
		"truncated tag":   {0x80},
		"truncated bytes": {byte(1<<3 | protowire.BytesType), 5, 'a'},
		"truncated fixed": {byte(1<<3 | protowire.Fixed64Type), 1, 2},
		"field zero":      {0, 1},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Consume(b); err == nil {
				t.Error("Consume: no error")
			}
			if _, rest, ok := Next(b); ok || rest != nil {
				t.Errorf("Next: ok %v, rest %q", ok, rest)
			}
		})
	}
}
