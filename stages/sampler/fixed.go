package sampler

import (
	"context"
	"sync"
)

// Fixed is Policies over one policy loaded in this process, not
// published through a weight store: a Hugging Face checkpoint that
// `wsgrpo eval --model DIR` samples from its directory. Acquire always
// hands out that policy; Close closes its model once the last user
// releases it. It is safe for concurrent use.
type Fixed struct {
	mu     sync.Mutex
	pol    Policy
	refs   int
	closed bool
	done   bool // the model is closed
}

var _ Policies = (*Fixed)(nil)

// NewFixed returns Policies that always hands out pol. It takes ownership
// of pol.Model.
func NewFixed(pol Policy) *Fixed { return &Fixed{pol: pol} }

// Acquire implements Policies. It fails with ErrClosed after Close.
func (f *Fixed) Acquire(context.Context) (*Policy, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, nil, ErrClosed
	}
	f.refs++
	var once sync.Once
	return &f.pol, func() { once.Do(f.release) }, nil
}

// release drops one user, closing the model after Close once none is left.
func (f *Fixed) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refs--
	if f.refs == 0 && f.closed && !f.done {
		f.done = true
		_ = f.pol.Model.Close()
	}
}

// Close closes the policy's model now, or once its users release it.
// Acquire fails with ErrClosed afterwards.
func (f *Fixed) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.refs > 0 || f.done {
		return nil
	}
	f.done = true
	return f.pol.Model.Close()
}
