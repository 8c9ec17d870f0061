package tokenizer

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDefaultAlphabetValid(t *testing.T) {
	c, err := NewChar(DefaultAlphabet)
	if err != nil {
		t.Fatalf("NewChar(DefaultAlphabet): %v", err)
	}
	if got, want := Default().VocabSize(), c.VocabSize(); got != want {
		t.Fatalf("Default vocab %d, NewChar vocab %d", got, want)
	}
}

func TestCharRoundTrip(t *testing.T) {
	tok := Default()
	tests := []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"arithmetic", "12+34=46"},
		{"sentence", "Question: what is (3*4)-5?\nAnswer: 7."},
		{"all", DefaultAlphabet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := tok.Encode(tt.text)
			if len(ids) != len([]rune(tt.text)) {
				t.Fatalf("len(ids)=%d want %d", len(ids), len([]rune(tt.text)))
			}
			for _, id := range ids {
				if id < numSpecial || int(id) >= tok.VocabSize() {
					t.Fatalf("id %d out of character range", id)
				}
			}
			if got := tok.Decode(ids); got != tt.text {
				t.Fatalf("Decode(Encode(%q)) = %q", tt.text, got)
			}
		})
	}
}

func TestCharSpecials(t *testing.T) {
	tok := Default()
	ids := []int32{tok.BOS(), tok.Encode("7")[0], tok.PAD(), tok.EOS()}
	if got := tok.Decode(ids); got != "7" {
		t.Fatalf("specials should decode to nothing, got %q", got)
	}
	if got := tok.Encode("é"); len(got) != 1 || got[0] != tok.UNK() {
		t.Fatalf("unknown character should be UNK, got %v", got)
	}
	if got := tok.Decode([]int32{tok.UNK(), 9999, -1}); got != "\uFFFD\uFFFD\uFFFD" {
		t.Fatalf("UNK/out of range decode: %q", got)
	}
	if ids := map[int32]bool{tok.BOS(): true, tok.EOS(): true, tok.PAD(): true, tok.UNK(): true}; len(ids) != 4 {
		t.Fatal("special ids are not distinct")
	}
}

func TestCharJSON(t *testing.T) {
	tok, err := NewChar("abc\n ")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.VocabSize() != tok.VocabSize() || back.Decode(back.Encode("ab c\n")) != "ab c\n" {
		t.Fatalf("round trip changed the tokenizer: %s", data)
	}
	var c Char
	if err := json.Unmarshal(data, &c); err != nil || c.Alphabet() != "abc\n " {
		t.Fatalf("UnmarshalJSON: %v %q", err, c.Alphabet())
	}
}

func TestFromJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want error
	}{
		{"not json", "{", ErrBadJSON},
		{"unknown type", `{"type":"bpe"}`, ErrUnknownType},
		{"empty alphabet", `{"type":"char","specials":["<pad>","<bos>","<eos>","<unk>"],"alphabet":""}`, ErrBadVocab},
		{"duplicate", `{"type":"char","specials":["<pad>","<bos>","<eos>","<unk>"],"alphabet":"aa"}`, ErrBadVocab},
		{"wrong specials", `{"type":"char","specials":["<bos>","<pad>","<eos>","<unk>"],"alphabet":"a"}`, ErrBadVocab},
		{"missing specials", `{"type":"char","alphabet":"a"}`, ErrBadVocab},
		{"bad field type", `{"type":"char","specials":["<pad>","<bos>","<eos>","<unk>"],"alphabet":5}`, ErrBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromJSON([]byte(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v want %v", err, tt.want)
			}
		})
	}
}

func FuzzFromJSON(f *testing.F) {
	good, _ := json.Marshal(Default())
	f.Add(good)
	f.Add([]byte(`{"type":"char","specials":["<pad>","<bos>","<eos>","<unk>"],"alphabet":"ab"}`))
	f.Add([]byte(`{"type":"char"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := FromJSON(data)
		if err != nil {
			return
		}
		s := tok.Decode(tok.Encode("0123 abc"))
		if len(tok.Encode(s)) != len([]rune(s)) {
			t.Fatalf("encode length mismatch for %q", s)
		}
	})
}
