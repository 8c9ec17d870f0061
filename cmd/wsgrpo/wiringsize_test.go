package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestWiringSizes: --batches, --rows and --timeout are checked before a
// wiring run builds anything, against the NATS max payload and the memory
// available, and a refusal says the limit and what to pass instead.
func TestWiringSizes(t *testing.T) {
	ok := wiringOptions{Batches: 200, Rows: 64, Timeout: time.Minute}
	with := func(f func(*wiringOptions)) wiringOptions {
		o := ok
		f(&o)
		return o
	}
	const gib = 1 << 30
	for _, tc := range []struct {
		name       string
		o          wiringOptions
		maxPayload int64
		avail      uint64
		want       []string // "" when accepted
	}{
		{"defaults", ok, pipeline.DefaultMaxPayload, 2 * gib, nil},
		{"zero batches", with(func(o *wiringOptions) { o.Batches = 0 }), pipeline.DefaultMaxPayload, 0, []string{"--batches 0"}},
		{"negative rows", with(func(o *wiringOptions) { o.Rows = -5 }), pipeline.DefaultMaxPayload, 0, []string{"--rows -5"}},
		{"negative timeout", with(func(o *wiringOptions) { o.Timeout = -time.Second }), pipeline.DefaultMaxPayload, 0, []string{"--timeout -1s"}},
		{"rows overflow", with(func(o *wiringOptions) { o.Batches, o.Rows = 100_000, 100_000 }), pipeline.DefaultMaxPayload, 0, []string{"more than the 2147483647 rows"}},
		{"batch above the payload", with(func(o *wiringOptions) { o.Batches, o.Rows = 1, 100_000_000 }), pipeline.DefaultMaxPayload, 0,
			[]string{"--rows 100000000", "max_payload 8 MiB", "pass --rows 12", "or fewer"}},
		{"batch above a small payload", with(func(o *wiringOptions) { o.Rows = 20_000 }), 1 << 20, 0, []string{"max_payload 1 MiB", "or fewer"}},
		{"run above the memory", with(func(o *wiringOptions) { o.Batches, o.Rows = 2000, 100_000 }), pipeline.DefaultMaxPayload, 20 * gib,
			[]string{"more than the 20 GiB available", "pass at most", "rows in all"}},
		{"batch above the memory", with(func(o *wiringOptions) { o.Batches, o.Rows = 1, 100_000 }), pipeline.DefaultMaxPayload, 600 << 20,
			[]string{"more than the 600 MiB available", "pass --rows"}},
		{"memory unknown", with(func(o *wiringOptions) { o.Batches = 100_000 }), pipeline.DefaultMaxPayload, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkWiringFlags(tc.o)
			if err == nil {
				err = checkWiringPayload(tc.o, "default", tc.maxPayload)
			}
			if err == nil {
				err = checkWiringMemory(tc.o, tc.avail)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: want it to say %q", err, w)
				}
			}
		})
	}
}

// TestWiringBatchBytes: the estimate of a prompt batch's size is close to
// the real one (within 2%), and never below it by much.
func TestWiringBatchBytes(t *testing.T) {
	for _, rows := range []int{1, 999, 1000, 5000, 60_000} {
		est, err := wiringBatchBytes("default", 300, rows)
		if err != nil {
			t.Fatal(err)
		}
		rec := wiringPrompts("default", 299, rows)
		b, err := schemas.Encode(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(est) / float64(len(b)); got < 0.99 || got > 1.02 {
			t.Errorf("rows %d: estimate %d bytes, encoded %d (ratio %.3f)", rows, est, len(b), got)
		}
	}
}

// TestAvailableMemory: on Linux the machine's available memory is known.
func TestAvailableMemory(t *testing.T) {
	if totalMemory() == 0 {
		t.Skip("memory is not known on this platform")
	}
	if a := availableMemory(); a == 0 || a > totalMemory() {
		t.Errorf("available memory %d of %d", a, totalMemory())
	}
}
