package learner

import (
	"fmt"
	"math"
	"slices"

	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// row is one labeled rollout waiting in its group.
type row struct {
	l      *schemas.Labeled
	seq    []int32 // prompt (BOS first) then completion
	prompt int     // tokens of seq that are prompt
	// drop is why the row will not train although its group does
	// (DropEmptyCompletion, DropTooLong); "" for a trainable row.
	drop   string
	ref    []float32 // reference logprobs of the completion tokens
	owners []*pending
}

// group collects the rows of one prompt's group until all arrived.
type group struct {
	id      string
	size    int32
	version int64
	rows    map[int32]*row    // by sample index
	ids     map[string]string // trajectory ids seen: the row's reason if dropped, "" if kept
	// dropped is set when the group will not train (DropNonFinite); its
	// later rows are dropped for the same reason.
	dropped string
	ready   bool
}

// prepare checks the rows of a batch against the rules every labeled row
// must keep and builds their token sequences. A violation means a broken
// upstream stage: the error wraps schemas.ErrInvalid and nothing of the
// batch is taken.
func (p *Processor) prepare(ls []schemas.Labeled) ([]*row, error) {
	out := make([]*row, len(ls))
	sizes := map[string]int32{}
	vocab := int32(p.model.vocabSize())
	for i := range ls {
		l := &ls[i]
		bad := func(format string, args ...any) error {
			return fmt.Errorf("learner: %w: row %d (trajectory %q): %s", schemas.ErrInvalid, i, l.TrajectoryID, fmt.Sprintf(format, args...))
		}
		switch {
		case l.TrajectoryID == "" || l.GroupID == "":
			return nil, bad("no trajectory or group id")
		case l.GroupSize < 1 || l.SampleIndex < 0 || l.SampleIndex >= l.GroupSize:
			return nil, bad("sample %d of a group of %d", l.SampleIndex, l.GroupSize)
		case len(l.TokenLogprobs) != len(l.CompletionTokenIDs):
			return nil, bad("%d token logprobs for %d completion tokens", len(l.TokenLogprobs), len(l.CompletionTokenIDs))
		case l.PolicyVersion < 0:
			return nil, bad("policy version %d", l.PolicyVersion)
		}
		if s, ok := sizes[l.GroupID]; ok && s != l.GroupSize {
			return nil, bad("group size %d, another row of group %q says %d", l.GroupSize, l.GroupID, s)
		}
		sizes[l.GroupID] = l.GroupSize
		if g := p.groups[l.GroupID]; g != nil && g.size != l.GroupSize {
			return nil, bad("group size %d, the rows already buffered of group %q say %d", l.GroupSize, l.GroupID, g.size)
		}
		if err := checkStepEnds(l); err != nil {
			return nil, bad("%v", err)
		}
		r := &row{l: l}
		if len(l.CompletionTokenIDs) > 0 {
			prompt, err := p.promptIDs(l)
			if err != nil {
				return nil, bad("%v", err)
			}
			r.seq = append(prompt, l.CompletionTokenIDs...)
			r.prompt = len(prompt)
			for _, id := range r.seq {
				if id < 0 || id >= vocab {
					return nil, bad("token id %d outside the policy's vocabulary of %d", id, vocab)
				}
			}
		}
		switch {
		case len(l.CompletionTokenIDs) == 0:
			r.drop = DropEmptyCompletion
		case len(r.seq)-1 > p.model.maxSeq():
			r.drop = DropTooLong
		}
		out[i] = r
	}
	return out, nil
}

// checkStepEnds checks that step ends increase within the completion and
// that step advantages, when present, match them one to one.
func checkStepEnds(l *schemas.Labeled) error {
	prev := int32(0)
	for _, e := range l.StepEnds {
		if e <= prev || int(e) > len(l.CompletionTokenIDs) {
			return fmt.Errorf("step ends %v do not increase within %d completion tokens", l.StepEnds, len(l.CompletionTokenIDs))
		}
		prev = e
	}
	if len(l.StepAdvantages) > 0 && len(l.StepAdvantages) != len(l.StepEnds) {
		return fmt.Errorf("%d step advantages for %d steps", len(l.StepAdvantages), len(l.StepEnds))
	}
	return nil
}

// promptIDs returns the tokens the policy was conditioned on: the row's
// prompt token ids, or its prompt text through the prompt template, as
// the sampler encodes it (tokenizer.PromptIDs).
func (p *Processor) promptIDs(l *schemas.Labeled) ([]int32, error) {
	return tokenizer.PromptIDs(p.tok, p.opts.PromptTemplate, l.Prompt.Prompt, l.PromptTokenIDs)
}

// nonFinite reports why a row's numbers cannot be trained on, or "".
func nonFinite(l *schemas.Labeled) string {
	bad := func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }
	if bad(l.Advantage) {
		return "advantage"
	}
	for _, a := range l.StepAdvantages {
		if bad(a) {
			return "step advantage"
		}
	}
	for _, lp := range l.TokenLogprobs {
		if bad(lp) || lp > 0 {
			return "sampler logprob"
		}
	}
	return ""
}

// ingest files prepared rows into their groups, from batch b (nil when the
// batch is not deferred). Rows that cannot train are dropped and counted;
// a group whose last row arrives gets its reference logprobs and joins
// the ready queue.
func (p *Processor) ingest(rows []*row, b *pending) {
	for _, r := range rows {
		l := r.l
		id := l.TrajectoryID
		if step, ok := p.consumed.step(id); ok {
			p.drop(DropDuplicate, 1)
			b.needs(step)
			continue
		}
		g := p.groups[l.GroupID]
		if g != nil {
			if _, seen := g.ids[id]; seen {
				p.drop(DropDuplicate, 1)
				if r0 := g.find(id); r0 != nil {
					b.attach()
					r0.owners = append(r0.owners, b)
				}
				continue
			}
		}
		switch {
		case l.PolicyVersion > p.version:
			p.drop(DropFutureVersion, 1)
			continue
		case p.version-l.PolicyVersion > p.opts.MaxStaleness:
			p.drop(DropStale, 1)
			continue
		}
		if g == nil {
			g = &group{id: l.GroupID, size: l.GroupSize, version: l.PolicyVersion, rows: map[int32]*row{}, ids: map[string]string{}}
			p.groups[l.GroupID] = g
		}
		if g.dropped != "" {
			g.ids[id] = g.dropped
			p.drop(g.dropped, 1)
			continue
		}
		if why := nonFinite(l); why != "" {
			p.log.Warn("dropping a group with a non-finite or invalid number", "group", g.id, "trajectory", id, "field", why)
			g.ids[id] = DropNonFinite
			p.drop(DropNonFinite, 1)
			p.dropGroup(g, DropNonFinite)
			continue
		}
		if g.rows[l.SampleIndex] != nil {
			// Another trajectory id for a sample already here: the
			// upstream stages disagree on ids; keep the first.
			p.drop(DropDuplicate, 1)
			continue
		}
		if r.drop != "" {
			p.drop(r.drop, 1)
		}
		b.attach()
		r.owners = append(r.owners, b)
		g.rows[l.SampleIndex] = r
		g.ids[id] = ""
		p.buffered++
		if int32(len(g.rows)) == g.size {
			g.ready = true
			p.ready = append(p.ready, g)
			if err := p.reference(g); err != nil {
				p.log.Warn("reference forward failed; retried at the update", "group", g.id, "err", err)
			}
		}
	}
}

// find returns the buffered row of trajectory id, if any.
func (g *group) find(id string) *row {
	for _, r := range g.rows {
		if r.l.TrajectoryID == id {
			return r
		}
	}
	return nil
}

// drop counts n rows dropped for reason.
func (p *Processor) drop(reason string, n int) {
	if n > 0 {
		p.stats.Dropped[reason] += int64(n)
	}
}

// dropGroup drops g's buffered rows for reason (counting the trainable
// ones), resolves their batches, and keeps g only to drop its later rows.
func (p *Processor) dropGroup(g *group, reason string) {
	for k, r := range g.rows {
		if r.drop == "" {
			p.drop(reason, 1)
		}
		g.ids[r.l.TrajectoryID] = reason
		for _, b := range r.owners {
			b.resolve(0)
		}
		delete(g.rows, k)
		p.buffered--
	}
	g.dropped = reason
	if g.ready {
		g.ready = false
		p.ready = slices.DeleteFunc(p.ready, func(x *group) bool { return x == g })
	}
}

// purgeStale drops every group, complete or not, whose version fell more
// than MaxStaleness behind; an incomplete group whose missing rows never
// come (dead-lettered upstream) is released this way too.
func (p *Processor) purgeStale() {
	for id, g := range p.groups {
		if p.version-g.version <= p.opts.MaxStaleness {
			continue
		}
		if g.dropped == "" {
			p.dropGroup(g, DropStale)
		}
		delete(p.groups, id)
	}
}

// reference computes the reference logprobs of g's trainable rows that
// lack them. Without a KL term (Beta 0) there is no reference pass: the
// sampler's logprobs stand in, and the KL metric is then the KL to the
// sampler's policy.
func (p *Processor) reference(g *group) error {
	var todo []*row
	for _, k := range sortedKeys(g.rows) {
		r := g.rows[k]
		switch {
		case r.drop != "" || r.ref != nil:
		case p.opts.Beta == 0:
			r.ref = r.l.TokenLogprobs
		case p.labeledRef(r.l):
			r.ref = r.l.RefLogprobs
			p.refRows++
		default:
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	seqs, prompts := make([][]int32, len(todo)), make([]int, len(todo))
	for i, r := range todo {
		seqs[i], prompts[i] = r.seq, r.prompt
	}
	start := p.now()
	lps, err := p.ref.logprobs(seqs, prompts)
	p.refMs += ms(p.now().Sub(start))
	if err != nil {
		return err
	}
	for i, r := range todo {
		r.ref = lps[i]
	}
	return nil
}

// labeledRef reports whether l carries reference log-probabilities the
// learner can use instead of its own reference pass: computed by the
// labeler from this learner's reference policy (same ReferenceID), one per
// completion token, each finite and at most 0 (a log-probability; float
// rounding of a certain token may give a few ulps above 0). Anything else
// is ignored, and the learner computes them itself.
func (p *Processor) labeledRef(l *schemas.Labeled) bool {
	if l.Reference != p.refID || len(l.RefLogprobs) != len(l.CompletionTokenIDs) {
		return false
	}
	for _, v := range l.RefLogprobs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || v > 1e-4 {
			return false
		}
	}
	return true
}

// sortedKeys returns the sample indexes of rows in order.
func sortedKeys(rows map[int32]*row) []int32 {
	keys := make([]int32, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
