package main

import (
	"errors"
	"testing"
)

func TestTrainFLOPs(t *testing.T) {
	tests := []struct {
		name              string
		b, tt, d, f, v, l int
		want              float64
	}{
		// Hand-evaluated: per layer 2·1·1·(4+4) + 4·1·1·1 = 20; head 2·1·1·1·1 = 2.
		{"unit", 1, 1, 1, 2, 1, 1, 3 * (20 + 2)},
		{"no layers is the head only", 2, 3, 4, 8, 5, 0, 3 * 2 * 2 * 3 * 4 * 5},
		// 32x128 tokens, d 128, f 512, v 64, 2 layers:
		// per layer 2·4096·(65536+131072) + 4·32·16384·128 = 1610612736 + 268435456;
		// head 2·4096·128·64 = 67108864.
		{"training baseline, 2 layers", 32, 128, 128, 512, 64, 2, 3 * (2*(1610612736+268435456) + 67108864)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TrainFLOPs(tc.b, tc.tt, tc.d, tc.f, tc.v, tc.l); got != tc.want {
				t.Fatalf("TrainFLOPs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr error
	}{
		{"defaults", nil, nil},
		{"four layers", []string{"--layers", "4", "--steps", "1", "--warmup", "0"}, nil},
		{"zero steps", []string{"--steps", "0"}, ErrBadFlags},
		{"negative warmup", []string{"--warmup", "-1"}, ErrBadFlags},
		{"heads do not divide width", []string{"--heads", "3"}, ErrBadFlags},
		{"unknown flag", []string{"--nope"}, ErrBadFlags},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("parseFlags(%v) error = %v, want %v", tc.args, err, tc.wantErr)
			}
		})
	}
}
