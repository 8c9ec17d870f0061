package report

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsgrpo/wsgrpo/tracelog"
)

// Errors of this package, tested with errors.Is. Errors of the store
// (tracelog.ErrQuery, tracelog.ErrUnavailable, ...) are wrapped unchanged.
var (
	// ErrNoTrajectories is returned by Build for a run without rows.
	ErrNoTrajectories = errors.New("report: run has no trajectories")
	// ErrUnknownQuery is returned by SQL for a name without a file.
	ErrUnknownQuery = errors.New("report: unknown query")
	// ErrResult is returned when a query's result lacks a column the report
	// reads or holds a value of an unexpected type.
	ErrResult = errors.New("report: unexpected query result")
	// ErrOptions is returned for options that cannot work.
	ErrOptions = errors.New("report: invalid options")
)

// MaxBins bounds Options.HistogramBins and AccuracyBins: more buckets
// than a plot has pixels would only fill memory.
const MaxBins = 1000

// Querier runs one SQL statement with ? placeholders: tracelog.Store.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (*tracelog.Result, error)
}

var discard = slog.New(slog.DiscardHandler)

// Options tune Build. The zero value is usable.
type Options struct {
	// HistogramBins is about how many buckets the length histograms of the
	// first and last step get (default 20, at most MaxBins); the bucket
	// width is rounded up to 1, 2 or 5 times a power of ten.
	HistogramBins int
	// AccuracyBins is about how many length buckets accuracy is split into
	// (default 10), rounded the same way.
	AccuracyBins int
	// Logger receives one debug event per query; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.HistogramBins == 0 {
		o.HistogramBins = 20
	}
	if o.AccuracyBins == 0 {
		o.AccuracyBins = 10
	}
	if o.HistogramBins < 1 || o.AccuracyBins < 1 || o.HistogramBins > MaxBins || o.AccuracyBins > MaxBins {
		return o, fmt.Errorf("%w: bins must be 1..%d (histogram %d, accuracy %d)", ErrOptions, MaxBins, o.HistogramBins, o.AccuracyBins)
	}
	if o.Logger == nil {
		o.Logger = discard
	}
	return o, nil
}

// LengthStats describes the completion lengths (tokens) and reasoning
// steps of a set of trajectories. Medians and p90s are exact order
// statistics: the value at index floor(q*n) of the sorted values. All
// statistics are 0 for an empty set.
type LengthStats struct {
	Trajectories int64   `json:"trajectories"`
	MeanTokens   float64 `json:"mean_tokens"`
	MedianTokens float64 `json:"median_tokens"`
	P90Tokens    float64 `json:"p90_tokens"`
	MeanSteps    float64 `json:"mean_steps"`
	MedianSteps  float64 `json:"median_steps"`
	P90Steps     float64 `json:"p90_steps"`
}

// Lengths splits length statistics by outcome.
type Lengths struct {
	All       LengthStats `json:"all"`
	Correct   LengthStats `json:"correct"`
	Incorrect LengthStats `json:"incorrect"`
}

// Totals counts a set of trajectories by outcome.
type Totals struct {
	Trajectories int64 `json:"trajectories"`
	Correct      int64 `json:"correct"`
	// Truncated counts completions cut at the token limit
	// (finish_reason = 'length').
	Truncated   int64 `json:"truncated"`
	TotalTokens int64 `json:"total_tokens"`
	// Accuracy is Correct / Trajectories.
	Accuracy float64 `json:"accuracy"`
	// TruncatedShare is Truncated / Trajectories.
	TruncatedShare float64 `json:"truncated_share"`
	// TokensPerCorrect is TotalTokens / Correct: the completion tokens
	// spent per correct answer (0 when no answer was correct).
	TokensPerCorrect float64 `json:"tokens_per_correct"`
}

func (t *Totals) derive() {
	if t.Trajectories > 0 {
		t.Accuracy = float64(t.Correct) / float64(t.Trajectories)
		t.TruncatedShare = float64(t.Truncated) / float64(t.Trajectories)
	}
	if t.Correct > 0 {
		t.TokensPerCorrect = float64(t.TotalTokens) / float64(t.Correct)
	}
}

// StepStats is one training step of a run.
type StepStats struct {
	Step int64 `json:"step"`
	Totals
	Lengths Lengths `json:"lengths"`
}

// Summary is a whole run.
type Summary struct {
	Totals
	Lengths Lengths `json:"lengths"`
	// FirstStep and LastStep are the smallest and largest training step.
	FirstStep int64 `json:"first_step"`
	LastStep  int64 `json:"last_step"`
	// TrainingSteps counts the distinct training steps with trajectories.
	TrainingSteps int64 `json:"training_steps"`
	// MaxTokens is the longest completion.
	MaxTokens int64 `json:"max_tokens"`
}

// Bucket is one completion-length bucket: lengths in [MinTokens,
// MaxTokens).
type Bucket struct {
	MinTokens int64 `json:"min_tokens"`
	MaxTokens int64 `json:"max_tokens"`
	Totals
	// Share is Trajectories over the trajectories of the whole histogram.
	Share float64 `json:"share"`
}

// Histogram counts trajectories per length bucket of Width tokens.
type Histogram struct {
	Width        int64    `json:"width"`
	Trajectories int64    `json:"trajectories"`
	Buckets      []Bucket `json:"buckets"`
}

// StepHistogram is the length histogram of one training step. Its buckets
// run from 0 to the run's longest completion, so the histograms of two
// steps line up.
type StepHistogram struct {
	Step int64 `json:"step"`
	Histogram
}

// Report answers the reasoning-length questions for one run.
type Report struct {
	Run     string      `json:"run"`
	Summary Summary     `json:"summary"`
	Steps   []StepStats `json:"steps"`
	// FirstStepLengths and LastStepLengths are the length distributions at
	// the first and the last training step.
	FirstStepLengths StepHistogram `json:"first_step_lengths"`
	LastStepLengths  StepHistogram `json:"last_step_lengths"`
	// LengthAccuracy is accuracy against completion length over the whole
	// run; only buckets with trajectories are listed.
	LengthAccuracy Histogram `json:"length_accuracy"`
}

// Build runs the report's queries against q for run. It returns
// ErrNoTrajectories when the run has no rows.
func Build(ctx context.Context, q Querier, run string, opts Options) (*Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b := builder{ctx: ctx, q: q, log: opts.Logger}
	r := &Report{Run: run}
	if r.Summary, err = b.summary(run); err != nil {
		return nil, err
	}
	if r.Summary.Trajectories == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNoTrajectories, run)
	}
	if r.Steps, err = b.steps(run); err != nil {
		return nil, err
	}
	s := r.Summary
	width := BucketWidth(s.MaxTokens, opts.HistogramBins)
	if r.FirstStepLengths, r.LastStepLengths, err = b.stepHistograms(run, s.FirstStep, s.LastStep, width, s.MaxTokens); err != nil {
		return nil, err
	}
	if r.LengthAccuracy, err = b.lengthAccuracy(run, BucketWidth(s.MaxTokens, opts.AccuracyBins)); err != nil {
		return nil, err
	}
	return r, nil
}

// BucketWidth returns the bucket width that splits lengths 0..maxTokens
// into at most about bins buckets: the smallest of 1, 2, 5, 10, 20, 50, ...
// with (maxTokens+1)/width <= bins.
func BucketWidth(maxTokens int64, bins int) int64 {
	if bins < 1 {
		bins = 1
	}
	need := (max(maxTokens, 0) + int64(bins)) / int64(bins) // ceil((max+1)/bins)
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if w := m * p; w >= need {
				return w
			}
		}
	}
}

// builder runs the queries of one Build.
type builder struct {
	ctx context.Context
	q   Querier
	log *slog.Logger
}

func (b builder) query(name string, args ...any) (*tracelog.Result, error) {
	start := time.Now()
	res, err := b.q.Query(b.ctx, mustSQL(name), args...)
	if err != nil {
		return nil, fmt.Errorf("report: query %s: %w", name, err)
	}
	b.log.Debug("report query", "query", name, "rows", len(res.Rows), "elapsed", time.Since(start))
	return res, nil
}

func (b builder) summary(run string) (Summary, error) {
	res, err := b.query(QuerySummary, run)
	if err != nil {
		return Summary{}, err
	}
	if len(res.Rows) != 1 {
		return Summary{}, fmt.Errorf("%w: %s returned %d rows, want 1", ErrResult, QuerySummary, len(res.Rows))
	}
	rd, err := newReader(QuerySummary, res)
	if err != nil {
		return Summary{}, err
	}
	rd.row = res.Rows[0]
	s := Summary{
		Totals:        rd.totals(),
		Lengths:       rd.lengths(),
		FirstStep:     rd.int("first_step"),
		LastStep:      rd.int("last_step"),
		TrainingSteps: rd.int("training_steps"),
		MaxTokens:     rd.int("max_tokens"),
	}
	return s, rd.err
}

func (b builder) steps(run string) ([]StepStats, error) {
	res, err := b.query(QuerySteps, run)
	if err != nil {
		return nil, err
	}
	rd, err := newReader(QuerySteps, res)
	if err != nil {
		return nil, err
	}
	out := make([]StepStats, len(res.Rows))
	for i, row := range res.Rows {
		rd.row = row
		out[i] = StepStats{Step: rd.int("step"), Totals: rd.totals(), Lengths: rd.lengths()}
	}
	return out, rd.err
}

// stepHistograms reads the length histograms of steps first and last, with
// dense buckets from 0 to the bucket of maxTokens.
func (b builder) stepHistograms(run string, first, last, width, maxTokens int64) (StepHistogram, StepHistogram, error) {
	res, err := b.query(QueryLengthHist, width, run, first, last)
	if err != nil {
		return StepHistogram{}, StepHistogram{}, err
	}
	rd, err := newReader(QueryLengthHist, res)
	if err != nil {
		return StepHistogram{}, StepHistogram{}, err
	}
	nb := maxTokens/width + 1
	hists := [2]StepHistogram{{Step: first}, {Step: last}}
	for i := range hists {
		hists[i].Width = width
		hists[i].Buckets = make([]Bucket, nb)
		for j := range hists[i].Buckets {
			hists[i].Buckets[j].MinTokens = int64(j) * width
			hists[i].Buckets[j].MaxTokens = int64(j+1) * width
		}
	}
	for _, row := range res.Rows {
		rd.row = row
		step, idx := rd.int("step"), rd.int("bucket")
		if idx < 0 || idx >= nb {
			return StepHistogram{}, StepHistogram{}, fmt.Errorf("%w: %s: bucket %d outside 0..%d", ErrResult, QueryLengthHist, idx, nb-1)
		}
		t := rd.bucketTotals()
		for i := range hists {
			if hists[i].Step == step {
				hists[i].Buckets[idx].Totals = t
				hists[i].Trajectories += t.Trajectories
			}
		}
	}
	for i := range hists {
		hists[i].shares()
	}
	return hists[0], hists[1], rd.err
}

func (b builder) lengthAccuracy(run string, width int64) (Histogram, error) {
	res, err := b.query(QueryLengthAccuracy, width, run)
	if err != nil {
		return Histogram{}, err
	}
	rd, err := newReader(QueryLengthAccuracy, res)
	if err != nil {
		return Histogram{}, err
	}
	h := Histogram{Width: width, Buckets: make([]Bucket, len(res.Rows))}
	for i, row := range res.Rows {
		rd.row = row
		idx := rd.int("bucket")
		h.Buckets[i] = Bucket{MinTokens: idx * width, MaxTokens: (idx + 1) * width, Totals: rd.bucketTotals()}
		h.Trajectories += h.Buckets[i].Trajectories
	}
	h.shares()
	return h, rd.err
}

func (h *Histogram) shares() {
	if h.Trajectories == 0 {
		return
	}
	for i := range h.Buckets {
		h.Buckets[i].Share = float64(h.Buckets[i].Trajectories) / float64(h.Trajectories)
	}
}
