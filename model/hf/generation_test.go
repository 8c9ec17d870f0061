package hf

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestEOSIDs(t *testing.T) {
	c := Config{VocabSize: 10, EOS: []int{2}}
	for _, tc := range []struct {
		name string
		file string // generation_config.json; "" for none
		want []int
		err  error
	}{
		{"no generation config", "", []int{2}, nil},
		{"a list adds ids", `{"eos_token_id": [2, 7, 3]}`, []int{2, 7, 3}, nil},
		{"one id", `{"eos_token_id": 5}`, []int{2, 5}, nil},
		{"none named", `{"temperature": 0.6}`, []int{2}, nil},
		{"malformed", `{"eos_token_id": "x"}`, nil, ErrConfig},
		{"not JSON", `{`, nil, ErrConfig},
		{"outside the vocabulary", `{"eos_token_id": [2, 10]}`, nil, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(dir, GenerationConfigFile), []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := EOSIDs(dir, c)
			if !errors.Is(err, tc.err) || (tc.err == nil && !slices.Equal(got, tc.want)) {
				t.Fatalf("EOSIDs = %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
