package labeler

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"
)

// Activation is the hidden activation of every Model: ReLU. (The train
// package's GELU fusion targets the policy's tanh GELU; a ReLU MLP needs no
// fusion, and its Go scorer is exact and cheap.)
const Activation = "relu"

// Weight names, in the artifact and in the fitting graph. Matrices are
// stored [in, out], as the policy's: y = x·W + b.
const (
	WeightW1 = "mlp.fc1.weight" // [d_model, hidden]
	WeightB1 = "mlp.fc1.bias"   // [hidden]
	WeightW2 = "mlp.fc2.weight" // [hidden, 1]
	WeightB2 = "mlp.fc2.bias"   // [1]
)

// Meta describes a fitted preference model. It travels as the artifact's
// JSON metadata.
type Meta struct {
	// ID is the model's content hash (see Model.ID).
	ID string `json:"id"`
	// DModel is the feature width (FeatureWidth of Features over the
	// reference policy's d_model; the JSON name predates feature kinds).
	DModel int `json:"d_model"`
	// Features is the kind of feature vector it scores (FeaturesHidden,
	// FeaturesConfidence or FeaturesBoth); empty in artifacts written
	// before kinds existed, which all score hidden states.
	Features string `json:"features,omitempty"`
	// Hidden is the MLP's hidden width.
	Hidden int `json:"hidden"`
	// Activation is the hidden activation (Activation).
	Activation string `json:"activation"`
	// Reference identifies the reference policy whose features it scores
	// (Featurizer.Reference; "" when unknown).
	Reference string `json:"reference"`
	// Report is how its fit went.
	Report Report `json:"report"`
	// Created is when it was fitted.
	Created time.Time `json:"created"`
}

// Model is the preference MLP f_w: a feature vector of width DModel ->
// ReLU(x·W1 + b1) of width Hidden -> ·W2 + b2, one score. Higher means more
// like the prefixes of correct rollouts. A Model is immutable and safe for
// concurrent use.
type Model struct {
	meta   Meta
	w1, b1 []float32 // [DModel*Hidden] row-major [in, out], [Hidden]
	w2     []float32 // [Hidden]
	b2     float32
}

// newModel checks the weight sizes and computes the ID.
func newModel(meta Meta, w1, b1, w2 []float32, b2 float32) (*Model, error) {
	d, h := meta.DModel, meta.Hidden
	if d < 1 || h < 1 || len(w1) != d*h || len(b1) != h || len(w2) != h {
		return nil, fmt.Errorf("%w: d_model %d, hidden %d: weights of %d, %d and %d values", ErrModelSize, d, h, len(w1), len(b1), len(w2))
	}
	meta.Activation = Activation
	m := &Model{meta: meta, w1: w1, b1: b1, w2: w2, b2: b2}
	m.meta.ID = m.hash()
	return m, nil
}

// hash is "lbl-" and the first 12 hex digits of the SHA-256 of the
// architecture, the reference policy and the weights.
func (m *Model) hash() string {
	h := sha256.New()
	fmt.Fprintf(h, "wsgrpo-labeler/%d/%s/%d/%d/%s\x00", artifactVersion, m.meta.Activation, m.meta.DModel, m.meta.Hidden, m.meta.Reference)
	if k := m.Features(); k != FeaturesHidden {
		fmt.Fprintf(h, "features/%s\x00", k)
	}
	var b [4]byte
	for _, w := range [][]float32{m.w1, m.b1, m.w2, {m.b2}} {
		for _, v := range w {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return "lbl-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// ID is the model's content hash, "lbl-" and 12 hex digits: the same
// weights, architecture and reference policy give the same ID. Every
// labeled row records it.
func (m *Model) ID() string { return m.meta.ID }

// Meta returns the model's metadata.
func (m *Model) Meta() Meta { return m.meta }

// DModel is the feature width the model takes.
func (m *Model) DModel() int { return m.meta.DModel }

// Features is the kind of feature vector the model scores (FeaturesHidden
// for an artifact that names none).
func (m *Model) Features() string {
	if m.meta.Features == "" {
		return FeaturesHidden
	}
	return m.meta.Features
}

// Check reports whether the model scores features of the given kind over
// a reference policy of width dModel; its error wraps ErrModelSize.
func (m *Model) Check(kind string, dModel int) error {
	if m.Features() != kind {
		return fmt.Errorf("%w: the labeler %s scores %s features, the featurizer gives %s", ErrModelSize, m.meta.ID, m.Features(), kind)
	}
	if w := FeatureWidth(kind, dModel); m.meta.DModel != w {
		return fmt.Errorf("%w: the labeler %s takes %s features of width %d, the reference policy's d_model %d gives %d", ErrModelSize, m.meta.ID, kind, m.meta.DModel, dModel, w)
	}
	return nil
}

// Score returns f_w(x) for one feature vector of width DModel (a shorter
// or longer one is a programming error and panics).
func (m *Model) Score(x []float32) float32 {
	d, hn := m.meta.DModel, m.meta.Hidden
	if len(x) != d {
		panic(fmt.Sprintf("labeler: feature of width %d, model takes %d", len(x), d))
	}
	h := make([]float32, hn)
	copy(h, m.b1)
	for i, xi := range x {
		if xi == 0 {
			continue
		}
		row := m.w1[i*hn : (i+1)*hn]
		for j, w := range row {
			h[j] += xi * w
		}
	}
	s := m.b2
	for j, v := range h {
		if v > 0 {
			s += v * m.w2[j]
		}
	}
	return s
}
