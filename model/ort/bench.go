package ort

import (
	"fmt"
	"time"
)

// MeasureSessionCreate creates and closes a session for model n times and
// returns the mean time per creation (for `wsgrpo bench`).
func MeasureSessionCreate(r *Runtime, model []byte, n int) (time.Duration, error) {
	if n <= 0 {
		return 0, fmt.Errorf("%w: need a positive repetition count, got %d", ErrBadConfig, n)
	}
	var total time.Duration
	for range n {
		start := time.Now()
		s, err := r.NewSession(model, nil, nil)
		if err != nil {
			return 0, err
		}
		total += time.Since(start)
		if err := s.Close(); err != nil {
			return 0, err
		}
	}
	return total / time.Duration(n), nil
}
