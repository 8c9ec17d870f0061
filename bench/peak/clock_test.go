package peak

import (
	"errors"
	"testing"
)

func TestMeasureClock(t *testing.T) {
	tests := []struct {
		name        string
		runs, iters int
		wantErr     error
	}{
		{"one short run", 1, 1000, nil},
		{"three runs", 3, 10000, nil},
		{"no runs", 0, 10, ErrBadConfig},
		{"no iterations", 2, 0, ErrBadConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := MeasureClock(tc.runs, tc.iters)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if err == nil && (c.Runs != tc.runs || c.Iters != tc.iters || !(c.GHz > 0)) {
				t.Fatalf("MeasureClock = %+v", c)
			}
		})
	}
}

func TestChainIsDeterministic(t *testing.T) {
	// The chain must compute a value that depends on every iteration.
	a, b := chain(1000, 1), chain(1000, 1)
	if a == chain(999, 1) || a != b {
		t.Fatal("chain result does not depend on its length, or is not deterministic")
	}
}
