package dataset

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    Record
		wantErr error
	}{
		{"plain", `{"prompt":"2+3","answer":"5"}`, Record{Prompt: "2+3", Answer: "5", Reference: "5"}, nil},
		{"gsm8k", `{"prompt":"How many?","answer":"3+4=7 in all.\n#### 7"}`, Record{Prompt: "How many?", Answer: "3+4=7 in all.\n#### 7", Reference: "7"}, nil},
		{"gsm8k spaces", `{"prompt":"p","answer":"x ####   1,250  "}`, Record{Prompt: "p", Answer: "x ####   1,250  ", Reference: "1,250"}, nil},
		{"last marker wins", `{"prompt":"p","answer":"#### 1 #### 2"}`, Record{Prompt: "p", Answer: "#### 1 #### 2", Reference: "2"}, nil},
		{"gsm8k question", `{"question":"Natalia sold 48 clips in April and half as many in May. How many in all?","answer":"48/2 = <<48/2=24>>24 in May.\n48+24 = <<48+24=72>>72\n#### 72"}`, Record{Prompt: "Natalia sold 48 clips in April and half as many in May. How many in all?", Answer: "48/2 = <<48/2=24>>24 in May.\n48+24 = <<48+24=72>>72\n#### 72", Reference: "72"}, nil},
		{"number answer", `{"prompt":"p","answer":-42}`, Record{Prompt: "p", Answer: "-42", Reference: "-42"}, nil},
		{"id and extra fields", `{"id":"q1","prompt":"p","answer":"a","source":"x","n":[1,2]}`, Record{ID: "q1", Prompt: "p", Answer: "a", Reference: "a"}, nil},
		{"answer trimmed", `{"prompt":"p","answer":"  12 "}`, Record{Prompt: "p", Answer: "  12 ", Reference: "12"}, nil},
		{"not json", `prompt: 2+3`, Record{}, ErrNotJSON},
		{"truncated", `{"prompt":"2+3","answer":"5"`, Record{}, ErrNotJSON},
		{"array", `["2+3","5"]`, Record{}, ErrNotJSON},
		{"null", `null`, Record{}, ErrNotJSON},
		{"two objects", `{"prompt":"a","answer":"1"}{}`, Record{}, ErrNotJSON},
		{"no prompt", `{"answer":"5"}`, Record{}, ErrPrompt},
		{"empty prompt", `{"prompt":"","answer":"5"}`, Record{}, ErrPrompt},
		{"blank prompt", `{"prompt":" \n","answer":"5"}`, Record{}, ErrPrompt},
		{"null prompt", `{"prompt":null,"answer":"5"}`, Record{}, ErrPrompt},
		{"number prompt", `{"prompt":5,"answer":"5"}`, Record{}, ErrPrompt},
		{"prompt and question", `{"prompt":"a","question":"b","answer":"5"}`, Record{}, ErrPrompt},
		{"blank question", `{"question":"  ","answer":"5"}`, Record{}, ErrPrompt},
		{"no prompt", `{"answer":"5"}`, Record{}, ErrPrompt},
		{"no answer", `{"prompt":"p"}`, Record{}, ErrAnswer},
		{"empty answer", `{"prompt":"p","answer":""}`, Record{}, ErrAnswer},
		{"empty after marker", `{"prompt":"p","answer":"work #### "}`, Record{}, ErrAnswer},
		{"null answer", `{"prompt":"p","answer":null}`, Record{}, ErrAnswer},
		{"object answer", `{"prompt":"p","answer":{"v":1}}`, Record{}, ErrAnswer},
		{"number id", `{"id":3,"prompt":"p","answer":"a"}`, Record{}, ErrID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeLine([]byte(tc.line))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("DecodeLine(%s) error %v, want %v", tc.line, err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("DecodeLine(%s) = %+v, want %+v", tc.line, got, tc.want)
			}
		})
	}
}

func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"2+3","answer":"5"}`,
		`{"prompt":"q","answer":"w #### 7","id":"x"}`,
		`{"prompt":"q","answer":7.5}`,
		`{"question":"q","answer":"w #### 7"}`,
		`{"prompt":"","answer":""}`,
		`not json`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeLine(line)
		if err != nil {
			if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrPrompt) && !errors.Is(err, ErrAnswer) && !errors.Is(err, ErrID) {
				t.Fatalf("DecodeLine(%q) error %v matches none of the package's errors", line, err)
			}
			if r != (Record{}) {
				t.Fatalf("DecodeLine(%q) failed but returned %+v", line, r)
			}
			return
		}
		if strings.TrimSpace(r.Prompt) == "" || r.Reference == "" {
			t.Fatalf("DecodeLine(%q) = %+v: accepted an empty prompt or reference", line, r)
		}
		if r.Reference != ReferenceAnswer(r.Answer) || strings.Contains(r.Reference, GSM8KMarker) {
			t.Fatalf("DecodeLine(%q): reference %q of answer %q", line, r.Reference, r.Answer)
		}
		if utf8.Valid(line) && !utf8.ValidString(r.Prompt) {
			t.Fatalf("DecodeLine(%q): prompt %q not UTF-8", line, r.Prompt)
		}
	})
}
