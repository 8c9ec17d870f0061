package labeler

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/optim"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/train"
)

// Inputs of the fitting graph: the features of the preferred and the
// rejected side of N pairs, [N, d_model] float32 each.
const (
	InputPos = "feat_pos"
	InputNeg = "feat_neg"
)

// Config configures Fit. Start from DefaultConfig.
type Config struct {
	// Hidden is the MLP's hidden width (the paper's reviews: 512).
	Hidden int `json:"hidden" koanf:"hidden"`
	// LR is AdamW's learning rate; WeightDecay its decoupled decay (on the
	// two matrices, not the biases).
	LR          float64 `json:"lr" koanf:"lr"`
	WeightDecay float64 `json:"weight_decay" koanf:"weight_decay"`
	// Epochs is the number of passes over the training pairs, in
	// mini-batches of BatchSize pairs.
	Epochs    int `json:"epochs" koanf:"epochs"`
	BatchSize int `json:"batch_size" koanf:"batch_size"`
	// HeldOut is the share of groups (prompts, never single pairs) whose
	// pairs are held out of training to measure generalisation, in [0, 1).
	// With at least two groups and HeldOut > 0, at least one group is held
	// out and at least one trains.
	HeldOut float64 `json:"held_out" koanf:"held_out"`
	// MaxPairsPerGroup caps the pairs one group gives (0: no cap; see
	// BuildPairs).
	MaxPairsPerGroup int `json:"max_pairs_per_group" koanf:"max_pairs_per_group"`
	// Seed draws the initial weights, the held-out groups, the capped
	// pairs and the mini-batch order.
	Seed uint64 `json:"seed" koanf:"seed"`
	// Reference identifies the reference policy whose features the pairs
	// hold (Featurizer.Reference); the model records it.
	Reference string `json:"reference" koanf:"reference"`
	// Features is the kind of features the pairs hold (FeaturesHidden,
	// FeaturesConfidence or FeaturesBoth; see DefaultFeatures): what the
	// featurizer of the fit and of the scoring must give. The model records
	// it.
	Features string `json:"features" koanf:"features"`
	// Anchors adds the anchor pairs (AnchorPairs) to the same-prompt
	// pairs, so that step rewards above 0.5 mean progress.
	Anchors bool `json:"anchors" koanf:"anchors"`
}

// DefaultConfig returns the defaults: hidden 512, LR 1e-3, weight decay
// 0.01, 30 epochs of 64-pair batches, a fifth of the prompts held out, at
// most 64 pairs per prompt, seed 1, DefaultFeatures, with anchor pairs.
func DefaultConfig() Config {
	return Config{Hidden: 512, LR: 1e-3, WeightDecay: 0.01, Epochs: 30, BatchSize: 64, HeldOut: 0.2, MaxPairsPerGroup: 64, Seed: 1, Features: DefaultFeatures, Anchors: true}
}

// Validate reports the first problem with c; its error wraps ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.Hidden < 1:
		return fmt.Errorf("%w: hidden %d", ErrConfig, c.Hidden)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("%w: lr %v must be positive", ErrConfig, c.LR)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("%w: weight decay %v", ErrConfig, c.WeightDecay)
	case c.Epochs < 1 || c.BatchSize < 1:
		return fmt.Errorf("%w: %d epochs of batch %d", ErrConfig, c.Epochs, c.BatchSize)
	case !(c.HeldOut >= 0 && c.HeldOut < 1):
		return fmt.Errorf("%w: held-out share %v outside [0, 1)", ErrConfig, c.HeldOut)
	case c.MaxPairsPerGroup < 0:
		return fmt.Errorf("%w: max pairs per group %d", ErrConfig, c.MaxPairsPerGroup)
	}
	_, err := checkFeatures(c.Features)
	return err
}

// Report is how a fit went. Loss is the mean Bradley-Terry loss, accuracy
// the share of pairs the model orders correctly (a tie counts as wrong),
// both measured after the last epoch. The held-out figures are 0 when no
// group was held out (HeldOutPairs 0); HeldOutAccuracy and HeldOutLoss
// are over the held-out (correct, incorrect) pairs of the same prompt, the
// anchor pairs (AnchorPairs) have their own figure.
type Report struct {
	Pairs           int     `json:"pairs"`
	Groups          int     `json:"groups"`
	HeldOutPairs    int     `json:"held_out_pairs"`
	HeldOutGroups   int     `json:"held_out_groups"`
	Epochs          int     `json:"epochs"`
	Steps           int     `json:"steps"`
	TrainLoss       float64 `json:"train_loss"`
	TrainAccuracy   float64 `json:"train_accuracy"`
	HeldOutLoss     float64 `json:"held_out_loss"`
	HeldOutAccuracy float64 `json:"held_out_accuracy"`
	// HeldOutAnchors and HeldOutAnchorAccuracy count and score the
	// held-out anchor pairs (0 without anchors).
	HeldOutAnchors        int     `json:"held_out_anchors,omitempty"`
	HeldOutAnchorAccuracy float64 `json:"held_out_anchor_accuracy,omitempty"`
	Seconds               float64 `json:"seconds"`
}

// Fit builds the pairs of examples (Pairs) and fits a model on them
// (FitPairs).
func Fit(rt *ort.Runtime, examples []Example, c Config, log *slog.Logger) (*Model, Report, error) {
	if err := c.Validate(); err != nil {
		return nil, Report{}, err
	}
	return FitPairs(rt, Pairs(examples, c), c, log)
}

// FitPairs trains a preference model on pairs with the Bradley-Terry loss:
// an ONNX graph scores both sides with the shared MLP weights, package
// train differentiates it and runs it in ONNX Runtime, and AdamW updates
// the weights in Go. Groups chosen by c.HeldOut and c.Seed are held out.
// A nil log discards logging.
func FitPairs(rt *ort.Runtime, pairs []Pair, c Config, log *slog.Logger) (*Model, Report, error) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := c.Validate(); err != nil {
		return nil, Report{}, err
	}
	if len(pairs) == 0 {
		return nil, Report{}, fmt.Errorf("%w: no pairs (every group all correct or all wrong?)", ErrPairs)
	}
	d := len(pairs[0].Pos)
	for i, p := range pairs {
		if len(p.Pos) != d || len(p.Neg) != d || d == 0 {
			return nil, Report{}, fmt.Errorf("%w: pair %d has features of width %d and %d, pair 0 %d", ErrPairs, i, len(p.Pos), len(p.Neg), d)
		}
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x1abe1e7))
	trainSet, heldSet, rep := split(pairs, c.HeldOut, rng)
	if len(trainSet) == 0 {
		return nil, rep, fmt.Errorf("%w: no training pairs after holding out %d groups", ErrPairs, rep.HeldOutGroups)
	}
	g, loss, acc, err := fitGraph(d, c.Hidden, rng)
	if err != nil {
		return nil, rep, err
	}
	tr, err := train.New(rt, g, loss, train.Config{
		Optim:   optim.Config{LR: c.LR, WeightDecay: c.WeightDecay, ClipNorm: 1},
		Metrics: []string{acc},
		NoFuse:  true,
	}, log)
	if err != nil {
		return nil, rep, err
	}
	defer tr.Close()
	order := make([]int, len(trainSet))
	for i := range order {
		order[i] = i
	}
	for epoch := range c.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum float64
		for s := 0; s < len(order); s += c.BatchSize {
			idx := order[s:min(s+c.BatchSize, len(order))]
			res, err := tr.Step(feeds(trainSet, idx, d))
			if err != nil {
				return nil, rep, err
			}
			sum += res.Loss * float64(len(idx))
			rep.Steps++
		}
		log.Debug("labeler epoch", "epoch", epoch+1, "train_loss", sum/float64(len(order)))
	}
	rep.Epochs = c.Epochs
	if rep.TrainLoss, rep.TrainAccuracy, err = evaluate(tr, trainSet, d, acc); err != nil {
		return nil, rep, err
	}
	var heldPairs, heldAnchors []Pair
	for _, p := range heldSet {
		if p.Depth == AnchorDepth {
			heldAnchors = append(heldAnchors, p)
		} else {
			heldPairs = append(heldPairs, p)
		}
	}
	if len(heldPairs) > 0 {
		if rep.HeldOutLoss, rep.HeldOutAccuracy, err = evaluate(tr, heldPairs, d, acc); err != nil {
			return nil, rep, err
		}
	}
	if rep.HeldOutAnchors = len(heldAnchors); len(heldAnchors) > 0 {
		if _, rep.HeldOutAnchorAccuracy, err = evaluate(tr, heldAnchors, d, acc); err != nil {
			return nil, rep, err
		}
	}
	w := map[string][]float32{}
	for _, p := range tr.Params() {
		w[p.Name] = slices.Clone(p.Data)
	}
	rep.Seconds = time.Since(start).Seconds()
	kind, _ := checkFeatures(c.Features)
	if kind == FeaturesHidden {
		kind = "" // as every artifact before kinds: the same ID for the same weights
	}
	m, err := newModel(Meta{DModel: d, Hidden: c.Hidden, Reference: c.Reference, Features: kind, Report: rep, Created: time.Now().UTC()},
		w[WeightW1], w[WeightB1], w[WeightW2], w[WeightB2][0])
	if err != nil {
		return nil, rep, err
	}
	log.Info("labeler fitted", "id", m.ID(), "pairs", rep.Pairs, "held_out_pairs", rep.HeldOutPairs,
		"train_accuracy", rep.TrainAccuracy, "held_out_accuracy", rep.HeldOutAccuracy, "held_out_anchor_accuracy", rep.HeldOutAnchorAccuracy,
		"train_loss", rep.TrainLoss, "held_out_loss", rep.HeldOutLoss, "seconds", rep.Seconds)
	return m, rep, nil
}

// split holds out a share of the groups of pairs. The groups with
// (correct, incorrect) pairs are drawn first, exactly as without anchor
// pairs, so the held-out pair accuracy of a fit with anchors and one
// without compare on the same prompts; the groups that only have anchor
// pairs (all correct or all wrong) are then drawn at the same share.
func split(pairs []Pair, share float64, rng *rand.Rand) (trainSet, held []Pair, rep Report) {
	var plain, anchorOnly []string
	seen := map[string]bool{}
	for _, p := range pairs {
		if p.Depth != AnchorDepth && !seen[p.Group] {
			seen[p.Group] = true
			plain = append(plain, p.Group)
		}
	}
	for _, p := range pairs {
		if !seen[p.Group] {
			seen[p.Group] = true
			anchorOnly = append(anchorOnly, p.Group)
		}
	}
	heldOut := map[string]bool{}
	draw := func(groups []string) int {
		rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
		n := int(math.Round(share * float64(len(groups))))
		if share > 0 && len(groups) >= 2 {
			n = min(max(n, 1), len(groups)-1)
		}
		for _, g := range groups[:n] {
			heldOut[g] = true
		}
		return n
	}
	n := draw(plain)
	if len(anchorOnly) > 0 {
		n += draw(anchorOnly)
	}
	rep = Report{Pairs: len(pairs), Groups: len(plain) + len(anchorOnly), HeldOutGroups: n}
	for _, p := range pairs {
		if !heldOut[p.Group] {
			trainSet = append(trainSet, p)
			continue
		}
		held = append(held, p)
		if p.Depth != AnchorDepth {
			rep.HeldOutPairs++
		}
	}
	return trainSet, held, rep
}

// feeds packs the pairs at idx into the graph's two inputs.
func feeds(pairs []Pair, idx []int, d int) map[string]*ort.Tensor {
	pos, neg := make([]float32, len(idx)*d), make([]float32, len(idx)*d)
	for k, i := range idx {
		copy(pos[k*d:], pairs[i].Pos)
		copy(neg[k*d:], pairs[i].Neg)
	}
	n := int64(len(idx))
	return map[string]*ort.Tensor{InputPos: ort.F32Tensor(pos, n, int64(d)), InputNeg: ort.F32Tensor(neg, n, int64(d))}
}

// evaluate returns the loss and accuracy of the current weights on pairs.
func evaluate(tr *train.Trainer, pairs []Pair, d int, acc string) (loss, accuracy float64, err error) {
	idx := make([]int, len(pairs))
	for i := range idx {
		idx[i] = i
	}
	res, err := tr.Evaluate(feeds(pairs, idx, d))
	if err != nil {
		return 0, 0, err
	}
	return res.Loss, res.Metrics[acc], nil
}

// fitGraph returns the fitting graph: both sides through one MLP (He
// initialisation of W1, N(0, 1/hidden) for W2, zero biases), and the names
// of its Bradley-Terry loss and accuracy.
func fitGraph(d, h int, rng *rand.Rand) (g *onnx.Graph, loss, acc string, err error) {
	b := onnx.NewBuilder("wsgrpo_labeler_fit")
	normal := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return v
	}
	b.Initializer(&onnx.Tensor{Name: WeightW1, DataType: onnx.Float, Dims: []int64{int64(d), int64(h)}, Float: normal(d*h, math.Sqrt(2/float64(d)))})
	b.Initializer(&onnx.Tensor{Name: WeightB1, DataType: onnx.Float, Dims: []int64{int64(h)}, Float: make([]float32, h)})
	b.Initializer(&onnx.Tensor{Name: WeightW2, DataType: onnx.Float, Dims: []int64{int64(h), 1}, Float: normal(h, math.Sqrt(1/float64(h)))})
	b.Initializer(&onnx.Tensor{Name: WeightB2, DataType: onnx.Float, Dims: []int64{1}, Float: []float32{0}})
	score := func(x string) string {
		hid := b.Op("Relu", []string{b.Op("Add", []string{b.Op("MatMul", []string{x, WeightW1}), WeightB1})})
		s := b.Op("Add", []string{b.Op("MatMul", []string{hid, WeightW2}), WeightB2})
		return b.Op("Squeeze", []string{s, b.Constant(onnx.Int64s(-1))})
	}
	shape := []onnx.Dim{{Param: "pairs"}, {Value: int64(d)}}
	pos := score(b.Input(InputPos, onnx.Float, shape...))
	neg := score(b.Input(InputNeg, onnx.Float, shape...))
	loss, acc, err = train.AppendBradleyTerry(b.Graph(), onnx.Float, pos, neg)
	return b.Graph(), loss, acc, err
}
