package tasks

import (
	"errors"
	"fmt"
	"iter"
	"testing"
)

func TestParseSplit(t *testing.T) {
	tests := []struct {
		in      string
		want    Split
		wantErr error
	}{
		{"train", Train, nil},
		{"test", Test, nil},
		{"", "", ErrUnknownSplit},
		{"Train", "", ErrUnknownSplit},
		{"validation", "", ErrUnknownSplit},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, err := ParseSplit(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseSplit(%q) error %v, want %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("ParseSplit(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseSplit(f *testing.F) {
	for _, s := range []string{"train", "test", "", "tra\x00in"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSplit(s)
		if (err == nil) != sp.Valid() {
			t.Fatalf("ParseSplit(%q) = %q, %v: validity and error disagree", s, sp, err)
		}
		if err == nil && sp.String() != s {
			t.Fatalf("ParseSplit(%q) = %q does not round-trip", s, sp)
		}
	})
}

func TestSplitOfShare(t *testing.T) {
	tests := []struct {
		share float64
		tol   float64
	}{
		{0, 0},
		{0.1, 0.01},
		{0.5, 0.015},
		{1, 0},
	}
	const n = 20000
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.share), func(t *testing.T) {
			test := 0
			for i := range n {
				key := fmt.Sprintf("item-%d", i)
				sp := SplitOf(key, tc.share)
				if sp != SplitOf(key, tc.share) {
					t.Fatalf("SplitOf(%q) not stable", key)
				}
				if sp == Test {
					test++
				}
			}
			if got := float64(test) / n; got < tc.share-tc.tol || got > tc.share+tc.tol {
				t.Fatalf("test share %.4f, want %.2f±%.3f", got, tc.share, tc.tol)
			}
		})
	}
}

// counting yields 0, 1, 2, ... as items until stop is reached (or forever
// when stop is negative).
func counting(stop int) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		for i := 0; stop < 0 || i < stop; i++ {
			if !yield(Item{ID: fmt.Sprint(i)}) {
				return
			}
		}
	}
}

func TestTake(t *testing.T) {
	tests := []struct {
		name      string
		stop, n   int
		wantCount int
	}{
		{"endless", -1, 5, 5},
		{"short source", 3, 5, 3},
		{"zero", -1, 0, 0},
		{"negative", 3, -1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Take(counting(tc.stop), tc.n)
			if len(got) != tc.wantCount {
				t.Fatalf("Take returned %d items, want %d", len(got), tc.wantCount)
			}
			for i, it := range got {
				if it.ID != fmt.Sprint(i) {
					t.Fatalf("item %d has ID %q", i, it.ID)
				}
			}
		})
	}
}
