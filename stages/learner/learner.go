package learner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/hf"
	mlabeler "github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/model/train"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// ErrClosed is returned by Process after Close.
var ErrClosed = errors.New("learner: closed")

// Processor is the learner stage. It satisfies stage.Processor and
// stage.Closer; its methods are safe for concurrent use (one update runs
// at a time).
type Processor struct {
	mu    sync.Mutex
	opts  Options
	log   *slog.Logger
	pub   Publisher
	model policyModel
	tok   tokenizer.Tokenizer
	meta  map[string]string // the initial checkpoint's metadata

	ref      *scorer
	tr       *train.Trainer
	refPrint string
	refID    string // the reference's model/labeler.ReferenceID

	step, version int64
	published     bool  // version is published
	advanced      int64 // the last step Steps was told
	durable       int64 // the last checkpointed step

	groups   map[string]*group
	ready    []*group
	buffered int
	consumed *window
	pending  []*pending
	stats    Stats

	lastEnd time.Time
	refMs   float64
	refRows int // rows since the last update whose reference log-probabilities came from the labeler
	closed  bool
	now     func() time.Time
}

// New returns a learner that trains init, which is also the frozen
// reference policy of the KL term, and publishes versions through pub.
// With Options.Dir holding a checkpoint it resumes there instead (init must
// then be the same reference policy). The first version it trains from is
// max(checkpoint version, latest published) + 1 unless the latest
// published version is the learner's own current one (see
// Options.InitVersion); it publishes that version at once.
func New(ctx context.Context, rt *ort.Runtime, init *checkpoint.Checkpoint, pub Publisher, o Options) (*Processor, error) {
	if rt == nil || init == nil || pub == nil {
		return nil, fmt.Errorf("%w: a runtime, an initial checkpoint and a publisher are required", ErrOptions)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := init.Validate(); err != nil {
		return nil, fmt.Errorf("%w: initial checkpoint: %w", ErrOptions, err)
	}
	return newProcessor(ctx, rt, builtin{init}, init.Metadata, pub, o)
}

// NewHF is New for a Hugging Face model: it trains init through
// hf.FullGraph, publishes versions as bundles (hf.MarshalBundle, which
// the sampler's Loader reads) and checkpoints the policy in Hugging Face
// layout. Rows' prompts are encoded with the model's BPE tokenizer and
// Options.PromptTemplate, which must be the samplers' (a chat template's,
// when they use one).
func NewHF(ctx context.Context, rt *ort.Runtime, init *hf.Bundle, pub Publisher, o Options) (*Processor, error) {
	if rt == nil || init == nil || pub == nil {
		return nil, fmt.Errorf("%w: a runtime, an initial model and a publisher are required", ErrOptions)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m, err := newHFPolicy(init)
	if err != nil {
		return nil, err
	}
	return newProcessor(ctx, rt, m, nil, pub, o)
}

// newProcessor is New and NewHF over a validated model and options.
func newProcessor(ctx context.Context, rt *ort.Runtime, model policyModel, meta map[string]string, pub Publisher, o Options) (*Processor, error) {
	o = o.withDefaults()
	p := &Processor{
		opts: o, log: o.Logger, pub: pub, model: model, tok: model.tokenizer(), meta: meta,
		groups: map[string]*group{}, now: time.Now,
		stats: Stats{Dropped: map[string]int64{}},
	}
	// Both identities of the reference hash the same encoding of its
	// weights: encode them once.
	st, err := checkpoint.WriteSafetensors(model.weights(), nil)
	if err != nil {
		return nil, err
	}
	cfg, err := model.referenceConfig()
	if err != nil {
		return nil, err
	}
	p.refPrint, p.refID = fingerprint(st), mlabeler.ReferenceIDOf(cfg, st)
	weights, version := model.weights(), o.InitVersion
	var sv *saved
	if o.Dir != "" {
		if sv, err = load(o.Dir, model); err != nil {
			return nil, err
		}
	}
	if sv != nil {
		if sv.Reference != p.refPrint {
			return nil, fmt.Errorf("%w: %s was trained from another reference policy", ErrCheckpoint, o.Dir)
		}
		weights, version = sv.weights, sv.Version
		p.step, p.durable, p.advanced = sv.Step, sv.Step, sv.Step
		p.stats.Skipped, p.stats.RowsTrained, p.stats.Dropped = sv.Skipped, sv.RowsTrained, sv.Dropped
	}
	p.consumed = newWindow(o.DedupWindow, nil)
	if sv != nil {
		p.consumed = newWindow(o.DedupWindow, sv.Consumed)
	}
	if err := p.build(rt, weights); err != nil {
		p.closeSessions()
		return nil, err
	}
	if sv != nil {
		if err := p.tr.Optimizer().UnmarshalBinary(sv.optimizer); err != nil {
			p.closeSessions()
			return nil, fmt.Errorf("%w: optimizer state: %w", ErrCheckpoint, err)
		}
	}
	latest, ok, err := pub.Latest(ctx)
	if err != nil {
		p.closeSessions()
		return nil, fmt.Errorf("learner: latest policy version: %w: %w", stage.ErrUnavailable, err)
	}
	// The weights' own version is adopted only when it is the latest
	// published; otherwise they are published under a version never used.
	p.version = version + 1
	switch {
	case ok && latest == version:
		p.version, p.published = version, true
	case ok:
		p.version = max(version, latest) + 1
	}
	if !p.published {
		if err := p.announce(ctx); err != nil {
			p.closeSessions()
			return nil, err
		}
	}
	p.lastEnd = p.now()
	p.log.Info("learner ready", "step", p.step, "version", p.version, "resumed", sv != nil,
		"params", p.model.numParams(), "groups_per_step", o.GroupsPerStep, "max_staleness", o.MaxStaleness)
	return p, nil
}

// build opens the reference session and the trainer over weights.
func (p *Processor) build(rt *ort.Runtime, weights policy.Weights) error {
	var err error
	if p.ref, err = newScorer(rt, p.model, p.tok.PAD()); err != nil {
		return err
	}
	m, err := p.model.fullGraph(weights)
	if err != nil {
		return err
	}
	out, err := train.AppendGRPO(m.Graph, onnx.Float, policy.OutputLogits, p.opts.grpo(p.model.maxSeq()))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	loss := appendScaledLoss(m.Graph, out.Loss)
	p.tr, err = train.New(rt, m.Graph, loss, train.Config{Optim: p.opts.Optim, Metrics: []string{out.KL, out.ClipFrac, out.Ratio}}, p.log)
	return err
}

// closeSessions releases the ONNX Runtime sessions.
func (p *Processor) closeSessions() {
	if p.ref != nil {
		_ = p.ref.Close()
		p.ref = nil
	}
	if p.tr != nil {
		_ = p.tr.Close()
		p.tr = nil
	}
}

// Process takes a labeled batch's rows into their groups and runs an
// update whenever GroupsPerStep groups are complete. It returns no
// batches. With a runner that supports deferral the batch is acknowledged
// once all its rows are trained (or dropped) and in a checkpoint;
// otherwise it is done when Process returns.
func (p *Processor) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	if k, err := schemas.KindOf(in); err != nil || k != schemas.KindLabeled {
		return nil, fmt.Errorf("learner: %w: a %q batch, the learner reads labeled batches (%v)", schemas.ErrWrongKind, k, err)
	}
	ls, err := schemas.ReadLabeled(in)
	if err != nil {
		return nil, fmt.Errorf("learner: %w", err)
	}
	var acks []stage.Ack
	defer func() {
		for _, a := range acks {
			a(nil)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if !p.published || p.advanced < p.step {
		if err := p.announce(ctx); err != nil {
			return nil, err
		}
	}
	rows, err := p.prepare(ls)
	if err != nil {
		return nil, err
	}
	var b *pending
	if ack, ok := stage.Defer(ctx); ok {
		b = &pending{ack: ack}
		p.pending = append(p.pending, b)
	}
	p.ingest(rows, b)
	err = p.trainReady(ctx)
	p.pending, acks = due(p.pending, p.durable)
	return nil, err
}

// trainReady runs updates while GroupsPerStep groups are complete.
func (p *Processor) trainReady(ctx context.Context) error {
	for len(p.ready) >= p.opts.GroupsPerStep {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.update(ctx, slices.Clone(p.ready[:p.opts.GroupsPerStep])); err != nil {
			return err
		}
	}
	return nil
}

// announce publishes the current version if it is not yet, and tells
// Steps the current step. A failure wraps stage.ErrUnavailable: the
// runner holds the batch and calls again.
func (p *Processor) announce(ctx context.Context) error {
	if !p.published {
		w, meta := p.snapshot()
		blob, err := p.model.blob(w, meta)
		if err != nil {
			return err
		}
		if err := p.pub.Publish(ctx, p.version, blob); err != nil {
			return fmt.Errorf("learner: publish version %d: %w: %w", p.version, stage.ErrUnavailable, err)
		}
		p.published = true
	}
	if p.opts.Steps != nil && p.advanced < p.step {
		if err := p.opts.Steps.Advance(ctx, p.step); err != nil {
			return fmt.Errorf("learner: advance to step %d: %w: %w", p.step, stage.ErrUnavailable, err)
		}
	}
	p.advanced = p.step
	return nil
}

// snapshot copies the current weights and returns them with metadata
// holding the step and version.
func (p *Processor) snapshot() (policy.Weights, map[string]string) {
	w := make(policy.Weights, len(p.tr.Params()))
	for _, q := range p.tr.Params() {
		w[q.Name] = policy.Param{Shape: append([]int64(nil), q.Dims...), Data: append([]float32(nil), q.Data...)}
	}
	meta := make(map[string]string, len(p.meta)+3)
	for k, v := range p.meta {
		meta[k] = v
	}
	meta["source"] = "wsgrpo learner"
	meta["learner_step"] = fmt.Sprint(p.step)
	meta["policy_version"] = fmt.Sprint(p.version)
	return w, meta
}

// Snapshot returns a copy of the current policy of a learner made with
// New; one made with NewHF gives ErrNotCheckpoint (see SnapshotBundle).
func (p *Processor) Snapshot() (*checkpoint.Checkpoint, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	b, ok := p.model.(builtin)
	if !ok {
		return nil, ErrNotCheckpoint
	}
	return b.with(p.snapshot())
}

// SnapshotBundle returns a copy of the current policy of a learner made
// with NewHF; one made with New gives ErrNotBundle.
func (p *Processor) SnapshotBundle() (*hf.Bundle, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	h, ok := p.model.(*hfPolicy)
	if !ok {
		return nil, ErrNotBundle
	}
	w, _ := p.snapshot()
	return h.b.WithWeights(w), nil
}

// Stats returns the learner's counters.
func (p *Processor) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats.clone()
	s.Step, s.Version, s.Buffered, s.PendingAcks = p.step, p.version, p.buffered, len(p.pending)
	return s
}

// checkpoint writes the current state to Options.Dir (when set) and
// marks the current step durable.
func (p *Processor) checkpoint() error {
	if p.opts.Dir == "" || p.durable == p.step {
		p.durable = p.step
		return nil
	}
	w, meta := p.snapshot()
	opt, err := p.tr.Optimizer().MarshalBinary()
	if err != nil {
		return err
	}
	s := &saved{weights: w, meta: meta, optimizer: opt, state: state{
		Step: p.step, Version: p.version, Published: p.published, Reference: p.refPrint,
		Consumed: p.consumed.entries(), Skipped: p.stats.Skipped, RowsTrained: p.stats.RowsTrained, Dropped: p.stats.Dropped,
	}}
	if err := save(p.opts.Dir, s, p.model, p.opts.KeepCheckpoints); err != nil {
		return err
	}
	p.durable = p.step
	return nil
}

// Close writes a final checkpoint, acknowledges the batches it covers,
// hands back (as unavailable, so they are redelivered) the batches whose
// rows were not trained, and releases the sessions.
func (p *Processor) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var errs []error
	if !p.published || p.advanced < p.step {
		if err := p.announce(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.checkpoint(); err != nil {
		errs = append(errs, err)
	}
	var acks []stage.Ack
	p.pending, acks = due(p.pending, p.durable)
	rest := p.pending
	p.pending = nil
	p.closeSessions()
	p.mu.Unlock()
	for _, a := range acks {
		a(nil)
	}
	for _, b := range rest {
		b.ack(fmt.Errorf("learner: closed before training these rows: %w", stage.ErrUnavailable))
	}
	if len(errs) > 0 {
		return fmt.Errorf("learner: close: %w", joinErrs(errs))
	}
	return nil
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
