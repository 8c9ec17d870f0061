// Package reload measures the sampler's reload: how long ONNX Runtime takes
// to turn a model (a new policy-weight version) into a ready session.
// `wsgrpo bench session` prints the figure (docs/benchmarks/model.md).
package reload

import (
	"fmt"
	"time"

	"github.com/wsgrpo/wsgrpo/model/ort"
)

// Session creates and closes a session for model n times and returns the
// mean time per creation.
func Session(r *ort.Runtime, model []byte, n int) (time.Duration, error) {
	if n <= 0 {
		return 0, fmt.Errorf("%w: need a positive repetition count, got %d", ort.ErrBadConfig, n)
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
