// Package reload measures the sampler's reload: how long ONNX Runtime takes
// to turn a model (a new policy-weight version) into a ready session
// (Session), and how long a published checkpoint blob takes to become a
// ready sampler (FromBlob).
// `wsgrpo bench session` prints the figure (docs/benchmarks/model.md).
package reload

import (
	"fmt"
	"time"

	"github.com/wsgrpo/wsgrpo/model/generate"
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

// FromBlob times turning a checkpoint blob (checkpoint.Marshal) into
// a ready sampler: FromBlob (decode the weights, build the KV-cache graph)
// plus Prepare (create its ONNX Runtime session). It does this n times,
// closing each model, and returns the mean and fastest time.
func FromBlob(rt *ort.Runtime, blob []byte, n int) (mean, fastest time.Duration, err error) {
	if n < 1 {
		return 0, 0, fmt.Errorf("%w: need a positive repetition count, got %d", generate.ErrOptions, n)
	}
	var total time.Duration
	for i := range n {
		start := time.Now()
		m, _, err := generate.FromBlob(rt, blob, nil)
		if err != nil {
			return 0, 0, err
		}
		err = m.Prepare()
		d := time.Since(start)
		if cerr := m.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, 0, err
		}
		total += d
		if i == 0 || d < fastest {
			fastest = d
		}
	}
	return total / time.Duration(n), fastest, nil
}
