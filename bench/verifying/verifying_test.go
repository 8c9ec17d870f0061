package verifying_test

import (
	"errors"
	"testing"

	"github.com/wsgrpo/wsgrpo/bench/verifying"
)

func TestRun(t *testing.T) {
	res, err := verifying.Run(t.Context(), 64, 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 192 || res.RowsPerSec <= 0 {
		t.Fatalf("%+v", res)
	}
	// Cut completions, slips and the rest: some right, some wrong.
	if res.Correct <= 0.3 || res.Correct >= 0.95 {
		t.Fatalf("correct share %.2f: the batch is not the mix it should be", res.Correct)
	}
	if _, err := verifying.Run(t.Context(), 0, 1); !errors.Is(err, verifying.ErrOptions) {
		t.Fatal(err)
	}
}
