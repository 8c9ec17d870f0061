package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/schemas/ddl"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// Defaults of Options.
const (
	// DefaultBatch is the number of rows per published batch.
	DefaultBatch = 64
	// DefaultPageRows bounds how many rows are read from the log at once.
	DefaultPageRows = 16384
)

// Options configures one replay.
type Options struct {
	// Run is the source run: only its rows are read.
	Run string
	// Into is the topology of the run the batches are published into; the
	// zero value is Run's. Replayed rows carry Into.Run as their run_id.
	Into pipeline.Topology
	// Target is the stage whose input stream receives the batches.
	Target Target
	// Where is a SQL boolean expression over the trajectories columns,
	// checked by ValidateWhere ("" : every row).
	Where string
	// Steps limits the training steps (zero value: all).
	Steps Steps
	// Batch is the number of rows per batch (default DefaultBatch). A batch
	// never splits a group and never mixes training steps, so a group
	// larger than Batch gets a batch of its own.
	Batch int
	// PageRows bounds the rows read from the log at once (default
	// DefaultPageRows; a group larger than that is read whole). A selection
	// that fits in one page is published in step order; a larger one is
	// read page by page in the log's sort order (trajectory id), so that
	// every row is read once, and each page is published in step order.
	PageRows int
	// Allocator builds the batches (default memory.DefaultAllocator).
	Allocator memory.Allocator
	// Logger receives progress (nil: discarded).
	Logger *slog.Logger
	// Progress, if set, is called after every published batch.
	Progress func(Progress)
}

// Progress is the state of a replay after one more batch.
type Progress struct {
	// Total is the number of source rows the selection holds.
	Total int64
	// Read is the number of source rows handled so far.
	Read int64
	// Rows is the number of rows published so far.
	Rows int64
	// Batches is the number of batches published so far.
	Batches int
}

// Summary describes a finished replay.
type Summary struct {
	Run    string // source run
	Into   string // run published into
	Target Target
	Kind   schemas.Kind
	// Stream and Subject are where the batches went.
	Stream, Subject string
	// Selected is the number of source rows the selection held.
	Selected int64
	// Rows is the number of rows published (the distinct prompts for the
	// sampler, every selected row otherwise).
	Rows int64
	// Batches is the number of batches; Messages the number of stream
	// messages they took (a batch over the size limit is split).
	Batches, Messages int
	// FirstStep and LastStep are the training steps replayed.
	FirstStep, LastStep int64
}

// Replay reads the selected rows of opts.Run from src and publishes them to
// the input stream of opts.Target in opts.Into, as that hand-off's schema,
// marked replayed. It returns ErrEmpty, with a message saying why, when the
// selection holds no row.
func Replay(ctx context.Context, src tracelog.Store, js jetstream.JetStream, opts Options) (Summary, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	kind, _ := o.Target.Kind()
	hop, err := o.Into.Hop(kind)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Run: o.Run, Into: o.Into.Run, Target: o.Target, Kind: kind, Stream: hop.Stream, Subject: hop.Subject}
	if err := checkStream(ctx, js, hop); err != nil {
		return sum, err
	}
	maxBody, err := o.Into.MaxBodySize(js)
	if err != nil {
		return sum, err
	}
	where, args := o.filter()
	pl, err := planPages(ctx, src, where, args, o.PageRows)
	if err != nil {
		return sum, err
	}
	if pl.total == 0 {
		return sum, emptyError(ctx, src, o)
	}
	sum.Selected, sum.FirstStep, sum.LastStep = pl.total, pl.first, pl.last
	if o.Target == TargetLearner {
		if err := checkLabeled(ctx, src, where, args); err != nil {
			return sum, err
		}
	}
	o.Logger.Info("replaying", "run", o.Run, "into", o.Into.Run, "target", o.Target, "subject", hop.Subject,
		"rows", pl.total, "pages", len(pl.pages))
	p := &publisher{o: o, js: js, hop: hop, kind: kind, maxBody: maxBody, sum: &sum,
		seen: map[string]bool{}, prog: Progress{Total: pl.total}}
	for i := range pl.pages {
		pg := &pl.pages[i]
		w, a := pg.where(where, args)
		rows, err := tracelog.ReadRows(ctx, src, w, a...)
		if err != nil {
			return sum, fmt.Errorf("replay: read page %d of %d: %w", i+1, len(pl.pages), err)
		}
		if err := p.page(ctx, pg.keep(rows)); err != nil {
			return sum, err
		}
	}
	o.Logger.Info("replay done", "rows", sum.Rows, "batches", sum.Batches, "messages", sum.Messages, "subject", hop.Subject)
	return sum, nil
}

func (o Options) withDefaults() (Options, error) {
	if err := pipeline.ValidateName(o.Run); err != nil {
		return o, fmt.Errorf("%w: run: %w", ErrOptions, err)
	}
	if o.Into.Run == "" {
		t, err := pipeline.NewTopology(o.Run)
		if err != nil {
			return o, fmt.Errorf("%w: %w", ErrOptions, err)
		}
		o.Into = t
	}
	if err := pipeline.ValidateName(o.Into.Run); err != nil {
		return o, fmt.Errorf("%w: into: %w", ErrOptions, err)
	}
	if _, err := o.Target.Kind(); err != nil {
		return o, err
	}
	if o.Where != "" {
		if err := ValidateWhere(o.Where); err != nil {
			return o, err
		}
	}
	if o.Steps.Set && o.Steps.From > o.Steps.To {
		return o, fmt.Errorf("%w: %d > %d", ErrSteps, o.Steps.From, o.Steps.To)
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.PageRows == 0 {
		o.PageRows = DefaultPageRows
	}
	if o.Batch < 1 || o.PageRows < 1 {
		return o, fmt.Errorf("%w: batch %d and page size %d must be positive", ErrOptions, o.Batch, o.PageRows)
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// filter is the selection as a WHERE expression: the run and the step
// range bound as arguments, the validated user expression parenthesised
// after them.
func (o Options) filter() (string, []any) {
	w, args := "run_id = ?", []any{o.Run}
	if o.Steps.Set {
		w += " AND step >= ? AND step <= ?"
		args = append(args, o.Steps.From, o.Steps.To)
	}
	if o.Where != "" {
		w += " AND (" + o.Where + ")"
	}
	return w, args
}

// checkStream makes sure the target stream exists and keeps what is
// published to it: an interest-retention stream drops messages that no
// consumer is interested in.
func checkStream(ctx context.Context, js jetstream.JetStream, hop pipeline.Hop) error {
	s, err := js.Stream(ctx, hop.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: stream %s does not exist (create the run's streams first)", ErrStream, hop.Stream)
	}
	if err != nil {
		return fmt.Errorf("replay: stream %s: %w", hop.Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("replay: stream %s: %w", hop.Stream, err)
	}
	if info.Config.Retention == jetstream.InterestPolicy && info.State.Consumers == 0 {
		return fmt.Errorf("%w: stream %s keeps messages only for its consumers and has none, so replayed batches would be dropped; start the %s (and logger) stage of the run once so that its durable consumer exists",
			ErrStream, hop.Stream, pipeline.StageLearner)
	}
	return nil
}

// emptyError explains an empty selection: no rows of the run at all, or
// none that pass the filters.
func emptyError(ctx context.Context, s tracelog.Store, o Options) error {
	n, err := s.Count(ctx, o.Run)
	if err != nil {
		return fmt.Errorf("%w: the selection is empty (and counting run %s failed: %w)", ErrEmpty, o.Run, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: the log holds no trajectories of run %q", ErrEmpty, o.Run)
	}
	return fmt.Errorf("%w: none of the %d trajectories of run %q match --steps %q --where %q",
		ErrEmpty, n, o.Run, o.Steps.String(), o.Where)
}

// checkLabeled refuses a learner replay of rows that were never labeled:
// their advantages are zero and would train nothing.
func checkLabeled(ctx context.Context, s tracelog.Store, where string, args []any) error {
	res, err := s.Query(ctx, "SELECT count() FROM "+ddl.Table+" FINAL WHERE ("+where+") AND labeled = 0", args...)
	if err != nil {
		return fmt.Errorf("replay: count unlabeled rows: %w", err)
	}
	if len(res.Rows) == 1 {
		if n, ok := res.Rows[0][0].(uint64); ok && n > 0 {
			return fmt.Errorf("%w: %d selected rows have no labeler columns (a run without a labeler); replay them --to labeler, or add --where 'labeled = 1'",
				ErrUnlabeled, n)
		}
	}
	return nil
}

// publisher turns pages of log rows into batches and publishes them.
type publisher struct {
	o       Options
	js      jetstream.JetStream
	hop     pipeline.Hop
	kind    schemas.Kind
	maxBody int
	sum     *Summary
	seen    map[string]bool // prompt ids already published (sampler)
	prog    Progress
}

// page publishes one page of rows in step order, whole groups per batch,
// never mixing steps in a batch.
func (p *publisher) page(ctx context.Context, rows []tracelog.Row) error {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := &rows[i], &rows[j]
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		if a.GroupID != b.GroupID {
			return a.GroupID < b.GroupID
		}
		if a.SampleIndex != b.SampleIndex {
			return a.SampleIndex < b.SampleIndex
		}
		return a.TrajectoryID < b.TrajectoryID
	})
	if p.o.Target == TargetSampler {
		return p.prompts(ctx, rows)
	}
	start := 0
	for start < len(rows) {
		end := start
		for end < len(rows) && rows[end].Step == rows[start].Step {
			g := groupEnd(rows, end)
			if end > start && g-start > p.o.Batch {
				break
			}
			end = g
		}
		if err := p.publish(ctx, rows[start:end], int64(end-start)); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// groupEnd returns the end of the group that starts at rows[i] (rows
// without a group id are groups of one).
func groupEnd(rows []tracelog.Row, i int) int {
	j := i + 1
	for j < len(rows) && rows[i].GroupID != "" && rows[j].GroupID == rows[i].GroupID && rows[j].Step == rows[i].Step {
		j++
	}
	return j
}

// prompts publishes the prompts of rows not published before, in batches.
func (p *publisher) prompts(ctx context.Context, rows []tracelog.Row) error {
	var batch []tracelog.Row
	read := int64(0)
	for i := range rows {
		read++
		if p.seen[rows[i].PromptID] {
			continue
		}
		p.seen[rows[i].PromptID] = true
		batch = append(batch, rows[i])
		if len(batch) == p.o.Batch {
			if err := p.publish(ctx, batch, read); err != nil {
				return err
			}
			batch, read = nil, 0
		}
	}
	if len(batch) > 0 {
		return p.publish(ctx, batch, read)
	}
	if read > 0 {
		// Rows whose prompts went out before: count them as handled.
		p.prog.Read += read
		if p.o.Progress != nil {
			p.o.Progress(p.prog)
		}
	}
	return nil
}

// publish sends rows as one batch of the target kind. read is the number
// of source rows the batch accounts for (for progress).
func (p *publisher) publish(ctx context.Context, rows []tracelog.Row, read int64) error {
	rec, ids := p.build(rows)
	defer rec.Release()
	id := messageID(p.o, p.sum.Batches, ids)
	n, err := pipeline.PublishBatch(ctx, p.js, p.hop.Subject, rec, id, p.maxBody)
	if err != nil {
		return fmt.Errorf("replay: publish batch %d (%d rows) to %s: %w", p.sum.Batches, len(rows), p.hop.Subject, err)
	}
	p.sum.Batches++
	p.sum.Messages += n
	p.sum.Rows += int64(len(rows))
	p.prog.Read += read
	p.prog.Rows, p.prog.Batches = p.sum.Rows, p.sum.Batches
	p.o.Logger.Debug("replayed batch", "batch", p.sum.Batches-1, "rows", len(rows), "step", rows[0].Step, "msg_id", id)
	if p.o.Progress != nil {
		p.o.Progress(p.prog)
	}
	return nil
}

// build converts rows to a record of the target kind, marked replayed and
// moved to the Into run, and returns it with the row ids.
func (p *publisher) build(rows []tracelog.Row) (arrow.RecordBatch, []string) {
	into, mem := p.o.Into.Run, p.o.Allocator
	ids := make([]string, len(rows))
	mark := func(pr *schemas.Prompt) { pr.RunID, pr.Replayed = into, true }
	switch p.o.Target {
	case TargetSampler:
		out := make([]schemas.Prompt, len(rows))
		for i := range rows {
			out[i] = rows[i].Verified().Prompt
			mark(&out[i])
			ids[i] = out[i].PromptID
		}
		return schemas.NewPromptBatch(mem, out), ids
	case TargetVerifier:
		out := make([]schemas.Rollout, len(rows))
		for i := range rows {
			out[i] = rows[i].Verified().Rollout
			mark(&out[i].Prompt)
			ids[i] = out[i].TrajectoryID
		}
		return schemas.NewRolloutBatch(mem, out), ids
	case TargetLabeler:
		out := make([]schemas.Verified, len(rows))
		for i := range rows {
			out[i] = rows[i].Verified()
			mark(&out[i].Prompt)
			ids[i] = out[i].TrajectoryID
		}
		return schemas.NewVerifiedBatch(mem, out), ids
	default:
		out := make([]schemas.Labeled, len(rows))
		for i := range rows {
			out[i] = rows[i].LabeledRow()
			mark(&out[i].Prompt)
			ids[i] = out[i].TrajectoryID
		}
		return schemas.NewLabeledBatch(mem, out), ids
	}
}

// messageID derives a batch's Nats-Msg-Id from the source run, the target
// run and stage, the batch index and the ids of its rows: the same replay
// run again publishes the same ids, which the stream de-duplicates.
func messageID(o Options, index int, ids []string) string {
	h := sha256.New()
	for _, s := range []string{o.Run, o.Into.Run, string(o.Target)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return "replay:" + string(o.Target) + ":" + strconv.Itoa(index) + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}
