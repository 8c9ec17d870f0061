package sampler

import (
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/tokenizer"
)

// TestEOS: the sampler's first EOS id is never the padding id (generate
// refuses EOS == PAD); a padding id in the set (Qwen2.5's base model pads
// with its EOS, <|endoftext|>) still ends a completion as an extra id.
func TestEOS(t *testing.T) {
	tok := tokenizer.Default()
	pad, e := tok.PAD(), tok.EOS()
	for _, tc := range []struct {
		name   string
		eos    []int32
		ignore bool
		first  int32
		extra  []int32
	}{
		{"the tokenizer's", nil, false, e, nil},
		{"ignored", []int32{e, 7}, true, -1, nil},
		{"several", []int32{e, 7, 9}, false, e, []int32{7, 9}},
		{"padding first", []int32{pad, 7, e}, false, 7, []int32{pad, e}},
		{"only the padding id", []int32{pad}, false, -1, []int32{pad}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := &Policy{Tokenizer: tok, EOS: tc.eos}
			first, extra := eos(pol, tc.ignore)
			if first != tc.first || !slices.Equal(extra, tc.extra) {
				t.Fatalf("eos = %d, %v; want %d, %v", first, extra, tc.first, tc.extra)
			}
		})
	}
}
