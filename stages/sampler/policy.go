package sampler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wsgrpo/wsgrpo/model/generate"
	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Policy is one version of the policy, ready to sample.
type Policy struct {
	// Version is the weight version; every rollout sampled with this
	// policy carries it.
	Version int64
	// Model decodes (KV cache).
	Model *generate.Model
	// Tokenizer encodes prompts and decodes completions.
	Tokenizer tokenizer.Tokenizer
	// MaxSeq is the longest sequence the model takes (0: unbounded).
	MaxSeq int
	// EOS are the ids that end a completion; nil means the tokenizer's
	// EOS alone. A Hugging Face model may list several (config.json,
	// generation_config.json), the padding id among them.
	EOS []int32
}

// Policies hands the sampler the policy to sample a batch with. Acquire
// returns the newest version ready to sample and a release function the
// sampler calls once it is done with it; the policy stays usable until
// then, even if a newer one replaces it meanwhile. An error wrapping
// stage.ErrUnavailable means there is no version to sample with yet.
type Policies interface {
	Acquire(ctx context.Context) (*Policy, func(), error)
}

// Versions is where published policy versions come from: the run's weight
// store (pipeline.WeightStore satisfies it; the command wires it).
type Versions interface {
	// Latest returns the newest published version.
	Latest(ctx context.Context) (int64, error)
	// Get returns the blob of a version: a checkpoint blob
	// (checkpoint.Marshal) or a Hugging Face bundle (hf.MarshalBundle).
	Get(ctx context.Context, version int64) ([]byte, error)
}

// ErrClosed is returned by Loader.Acquire after Close.
var ErrClosed = errors.New("sampler: policy loader closed")

// loadRetry is how long a version that failed to load is left alone
// before the loader tries it again.
const loadRetry = 5 * time.Second

// DefaultMaxLag is the Loader's default lag bound (SetMaxLag).
const DefaultMaxLag = 1

// Loader is Policies over Versions: it loads the newest version into
// ONNX Runtime (generate.FromBlob plus the session, or NewHF and
// its Load for a Hugging Face bundle) and keeps it. When a
// newer version is published, the next Acquire starts building it in the
// background and keeps handing out the current one until the new one is
// ready, so a version swap does not stall decoding; a replaced policy is
// closed once its last user releases it. A current version more than the
// lag bound behind the newest is not handed out: Acquire loads the newest
// first. It is safe for concurrent use.
type Loader struct {
	rt     *ort.Runtime
	src    Versions
	log    *slog.Logger
	maxLag int64

	mu       sync.Mutex
	cur      *held
	building int64 // version being built in the background, 0 if none
	failed   int64 // last version that failed to load
	failedAt time.Time
	closed   bool
	wg       sync.WaitGroup
	swaps    int
}

// held is a loaded policy and its users.
type held struct {
	pol     Policy
	refs    int
	retired bool
}

// NewLoader returns a Loader reading versions from src into rt. A nil log
// discards.
func NewLoader(rt *ort.Runtime, src Versions, log *slog.Logger) *Loader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loader{rt: rt, src: src, log: log, maxLag: DefaultMaxLag}
}

// SetMaxLag bounds how many versions behind the newest published one the
// policy Acquire hands out may be (default DefaultMaxLag, negative means
// 0). Within the bound a newer version is built in the background while
// sampling goes on with the current one; beyond it (a sampler that stayed
// idle while the learner published several versions, or whose last load
// failed) Acquire loads the newest before it returns, since the learner
// drops rows more than its max_staleness versions old. 0 samples every
// batch with the newest version (synchronous on-policy training).
func (l *Loader) SetMaxLag(n int64) {
	l.mu.Lock()
	l.maxLag = max(n, 0)
	l.mu.Unlock()
}

// Acquire implements Policies. The first call loads the newest version
// before returning; later calls return at once with the current version,
// unless it is more than the lag bound behind the newest (SetMaxLag): then
// they load the newest first.
func (l *Loader) Acquire(ctx context.Context) (*Policy, func(), error) {
	latest, lerr := l.src.Latest(ctx)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, nil, ErrClosed
	}
	switch {
	case l.cur == nil && lerr != nil:
		l.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: no policy version to sample with yet: %w", stage.ErrUnavailable, lerr)
	case l.cur == nil || (lerr == nil && latest-l.cur.pol.Version > l.maxLag):
		// The first version, or the current one is too far behind to
		// sample with: load the newest now.
		behind := int64(-1)
		if l.cur != nil {
			behind = latest - l.cur.pol.Version
		}
		l.mu.Unlock()
		start := time.Now()
		h, err := l.load(ctx, latest)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: policy version %d: %w", stage.ErrUnavailable, latest, err)
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = h.pol.Model.Close()
			return nil, nil, ErrClosed
		}
		switch {
		case l.cur != nil && l.cur.pol.Version >= h.pol.Version:
			_ = h.pol.Model.Close() // another worker's load got there first
		case l.cur == nil:
			l.install(h)
		default:
			l.install(h)
			l.log.Info("policy version loaded before sampling: the current one was too far behind", "version", latest, "behind", behind, "max_lag", l.maxLag, "load", time.Since(start))
		}
	case lerr == nil && latest > l.cur.pol.Version && l.building == 0 &&
		(latest != l.failed || time.Since(l.failedAt) > loadRetry):
		l.building = latest
		l.wg.Go(func() { l.background(latest) })
	case lerr != nil:
		l.log.Debug("could not read the latest policy version; sampling with the current one", "version", l.cur.pol.Version, "err", lerr)
	}
	h := l.cur
	h.refs++
	l.mu.Unlock()
	var once sync.Once
	return &h.pol, func() { once.Do(func() { l.release(h) }) }, nil
}

// background builds version v and installs it if it is still the newest.
func (l *Loader) background(v int64) {
	start := time.Now()
	h, err := l.load(context.Background(), v)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.building = 0
	if err != nil {
		l.failed, l.failedAt = v, time.Now()
		l.log.Warn("new policy version did not load; sampling goes on with the current one", "version", v, "err", err)
		return
	}
	if l.closed || (l.cur != nil && l.cur.pol.Version >= v) {
		_ = h.pol.Model.Close()
		return
	}
	l.install(h)
	l.log.Info("policy version swapped in", "version", v, "load", time.Since(start))
}

// install makes h current and retires the previous one (l.mu held).
func (l *Loader) install(h *held) {
	if old := l.cur; old != nil {
		old.retired = true
		if old.refs == 0 {
			_ = old.pol.Model.Close()
		}
		l.swaps++
	}
	l.cur = h
}

func (l *Loader) release(h *held) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h.refs--
	if h.refs == 0 && h.retired {
		_ = h.pol.Model.Close()
	}
}

// load fetches and prepares version v.
func (l *Loader) load(ctx context.Context, v int64) (*held, error) {
	blob, err := l.src.Get(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("fetch weights: %w", err)
	}
	if hf.IsBundle(blob) {
		return l.loadHF(v, blob)
	}
	m, ck, err := generate.FromBlob(l.rt, blob, l.log)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	if err := m.Prepare(); err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("create session: %w", err)
	}
	return &held{pol: Policy{Version: v, Model: m, Tokenizer: ck.Tokenizer, MaxSeq: ck.Config.MaxSeq}}, nil
}

// loadHF prepares version v from a Hugging Face bundle blob
// (hf.MarshalBundle): its sampling graph, BPE tokenizer and EOS ids.
func (l *Loader) loadHF(v int64, blob []byte) (*held, error) {
	b, err := hf.UnmarshalBundle(blob)
	if err != nil {
		return nil, fmt.Errorf("load Hugging Face model: %w", err)
	}
	h, err := NewHF(b)
	if err != nil {
		return nil, fmt.Errorf("load Hugging Face model: %w", err)
	}
	m, err := h.Load(l.rt, l.log)
	if err != nil {
		return nil, fmt.Errorf("load Hugging Face model: %w", err)
	}
	return &held{pol: Policy{Version: v, Model: m, Tokenizer: h.Tokenizer, MaxSeq: h.MaxSeq, EOS: h.EOS}}, nil
}

// Swaps returns how many times a newer version replaced the current one.
func (l *Loader) Swaps() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.swaps
}

// Close waits for a background build, then closes the current policy once
// its users release it. Acquire fails with ErrClosed afterwards.
func (l *Loader) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.cur; h != nil {
		h.retired = true
		if h.refs == 0 {
			return h.pol.Model.Close()
		}
	}
	return nil
}
