package segment_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/segment"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// pieces decodes each id to a fixed string, like a BPE vocabulary whose
// tokens span several characters.
type pieces []string

func (p pieces) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if int(id) < len(p) {
			b.WriteString(p[id])
		}
	}
	return b.String()
}

func TestLinesChar(t *testing.T) {
	tok := tokenizer.Default()
	for _, tc := range []struct {
		name string
		text string
		eos  bool
		want []string
	}{
		{"arith trace", "41*2=82\n82+23=105\nA:105", true, []string{"41*2=82\n", "82+23=105\n", "A:105"}},
		{"trailing newline", "1+1=2\nA:2\n", false, []string{"1+1=2\n", "A:2\n"}},
		{"blank lines are not steps", "\n\n1+1=2\n  \n\nA:2", false, []string{"\n\n1+1=2\n", "  \n\nA:2"}},
		{"no newline", "A:7", false, []string{"A:7"}},
		{"empty", "", true, nil},
		{"white space only", " \n \n", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := tok.Encode(tc.text)
			if tc.eos {
				ids = append(ids, tok.EOS())
			}
			ends := segment.Lines(tok, ids)
			if !slices.IsSorted(ends) || (len(ends) > 0 && int(ends[len(ends)-1]) > len(ids)) {
				t.Fatalf("ends %v of %d ids", ends, len(ids))
			}
			if got := segment.Texts(tok, ids, ends); !slices.Equal(got, tc.want) {
				t.Fatalf("steps %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLinesMultiCharTokens(t *testing.T) {
	vocab := pieces{"", "17+25", "=42\n", "\n\n", "A:", "42", " \n", "x\ny"}
	for _, tc := range []struct {
		name string
		ids  []int32
		want []int32
	}{
		{"newline inside a token", []int32{1, 2, 4, 5}, []int32{2, 4}},
		{"newline tokens only", []int32{3, 3}, nil},
		{"two lines in one token", []int32{7}, []int32{1, 1}[:1]},
		{"blank token line", []int32{1, 6, 4, 5}, []int32{2, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := segment.Lines(vocab, tc.ids); !slices.Equal(got, tc.want) {
				t.Fatalf("Lines = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzLines(f *testing.F) {
	f.Add("41*2=82\n82+23=105\nA:105")
	f.Add("\n\n \xff\n")
	tok := tokenizer.Default()
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		ends := segment.Lines(tok, ids)
		prev := int32(0)
		for _, e := range ends {
			if e <= prev || int(e) > len(ids) {
				t.Fatalf("ends %v not strictly increasing within %d ids", ends, len(ids))
			}
			prev = e
		}
		if strings.Join(segment.Texts(tok, ids, ends), "") != tok.Decode(ids[:prev]) {
			t.Fatal("steps do not concatenate to the text they cover")
		}
	})
}
