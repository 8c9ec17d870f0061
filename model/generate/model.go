// Package generate samples completions from a causal language model in ONNX
// Runtime: batched, left-padded prompts, temperature and top-p sampling,
// stop on EOS (one id or several) or a stop string, per-token
// log-probabilities, deterministic under a seed. It drives any decoder
// graph that follows the Hugging Face exported-decoder naming (input_ids,
// attention_mask, optional position_ids, past_key_values.N.key/value ->
// logits, present.N.key/value), encoded (Load) or in memory and of any
// size (LoadGraph), reading the layer count and head sizes from the
// graph's inputs, so a user's exported model works as well as wsgrpo's own
// policy. Without a KV cache (or for a graph without past inputs) it
// recomputes the whole sequence every step.
package generate

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
)

// Graph input and output names of the Hugging Face decoder convention.
const (
	inputIDs       = "input_ids"
	inputMask      = "attention_mask"
	inputPositions = "position_ids"
	outputLogits   = "logits"
	pastPrefix     = "past_key_values."
	presentPrefix  = "present."
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrModel means a graph does not follow the decoder convention (missing
	// input_ids or logits, unknown inputs, inconsistent cache inputs).
	ErrModel = errors.New("generate: unsupported model graph")
	// ErrOptions means sampling options are out of range.
	ErrOptions = errors.New("generate: invalid options")
	// ErrPrompt means the prompts cannot be batched (none, empty, or ids the
	// model cannot take).
	ErrPrompt = errors.New("generate: invalid prompt")
	// ErrTooLong means prompt plus new tokens exceed the model's sequence
	// limit.
	ErrTooLong = errors.New("generate: sequence longer than the model allows")
)

// Model is a decoder graph loaded into ONNX Runtime. Its sessions are created
// on first use: one returning logits and the new cache (cached decoding), one
// returning logits only (full recompute). Generate may be called
// concurrently.
type Model struct {
	rt    *ort.Runtime
	data  []byte
	graph *onnx.Model // instead of data: a graph in memory (LoadGraph)
	log   *slog.Logger
	sig   signature
	mu    sync.Mutex
	kv    *ort.Session
	full  *ort.Session
	close bool
	// MaxSeq is the longest sequence (padding included) the model accepts;
	// 0 means unknown. Generate refuses longer requests with ErrTooLong.
	MaxSeq int
}

// signature is what Generate needs to know about a graph's interface.
type signature struct {
	layers    int   // number of past_key_values.N pairs (0: no cache)
	heads     int64 // H of the cache tensors
	headDim   int64 // Dh of the cache tensors
	hasMask   bool
	hasPos    bool
	vocabSize int // 0 when the logits' last dimension is symbolic
	// inPlace: the cache is a fixed-size buffer updated in place (every
	// past input and its present output share one symbolic length, e.g.
	// policy.InPlaceKVGraph), so each present output is bound to the
	// memory of its past input.
	inPlace bool
}

// Load reads the interface of an encoded ONNX decoder graph and prepares a
// Model; sessions open lazily. The graph must take input_ids and return
// logits; attention_mask and position_ids are optional; cache inputs, if
// any, must be past_key_values.0..N-1 .key/.value float [B,H,P,Dh] with fixed
// H and Dh, matched by present.N outputs. A graph whose past inputs and
// present outputs all share one symbolic length (policy.InPlaceKVGraph's
// cache_seq) takes a fixed-size cache that ONNX Runtime updates in place:
// Generate then binds each present output to its past input's buffer.
func Load(rt *ort.Runtime, model []byte, log *slog.Logger) (*Model, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := onnx.ReadSignature(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	sig, err := readSignature(s)
	if err != nil {
		return nil, err
	}
	log.Debug("decoder loaded", "layers", sig.layers, "heads", sig.heads, "head_dim", sig.headDim,
		"position_ids", sig.hasPos, "attention_mask", sig.hasMask, "bytes", len(model))
	return &Model{rt: rt, data: model, log: log, sig: sig}, nil
}

// LoadGraph is Load for a graph in memory, of any size: its sessions open
// through ort.Runtime.NewModelSession, which hands weights that a single
// protobuf cannot hold (2 GiB or more) to ONNX Runtime from memory. The
// Model references g until Close, since a session may open lazily; g's
// initializers must not change meanwhile.
func LoadGraph(rt *ort.Runtime, g *onnx.Model, log *slog.Logger) (*Model, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if g == nil || g.Graph == nil {
		return nil, fmt.Errorf("%w: %w", ErrModel, onnx.ErrNoGraph)
	}
	inits := make(map[string]bool, len(g.Graph.Initializers))
	size := int64(0)
	for _, t := range g.Graph.Initializers {
		if t != nil {
			inits[t.Name] = true
			size += t.DataSize()
		}
	}
	s := &onnx.Signature{Outputs: g.Graph.Outputs}
	for _, in := range g.Graph.Inputs {
		if !inits[in.Name] {
			s.Inputs = append(s.Inputs, in)
		}
	}
	sig, err := readSignature(s)
	if err != nil {
		return nil, err
	}
	log.Debug("decoder loaded", "layers", sig.layers, "heads", sig.heads, "head_dim", sig.headDim,
		"position_ids", sig.hasPos, "attention_mask", sig.hasMask, "weight_bytes", size)
	return &Model{rt: rt, graph: g, log: log, sig: sig}, nil
}

// readSignature checks a graph interface against the decoder convention.
func readSignature(s *onnx.Signature) (signature, error) {
	var sig signature
	keys, values := map[int]onnx.ValueInfo{}, map[int]onnx.ValueInfo{}
	hasIDs := false
	for _, in := range s.Inputs {
		switch {
		case in.Name == inputIDs:
			hasIDs = true
		case in.Name == inputMask:
			sig.hasMask = true
		case in.Name == inputPositions:
			sig.hasPos = true
		case strings.HasPrefix(in.Name, pastPrefix):
			l, kind, ok := cacheName(in.Name, pastPrefix)
			if !ok {
				return sig, fmt.Errorf("%w: input %q", ErrModel, in.Name)
			}
			if kind == "key" {
				keys[l] = in
			} else {
				values[l] = in
			}
		default:
			return sig, fmt.Errorf("%w: unknown input %q", ErrModel, in.Name)
		}
	}
	if !hasIDs {
		return sig, fmt.Errorf("%w: no %q input", ErrModel, inputIDs)
	}
	outs := map[string]onnx.ValueInfo{}
	for _, o := range s.Outputs {
		outs[o.Name] = o
	}
	logits, ok := outs[outputLogits]
	if !ok {
		return sig, fmt.Errorf("%w: no %q output", ErrModel, outputLogits)
	}
	if logits.DataType != onnx.Float {
		return sig, fmt.Errorf("%w: logits are %v, want float", ErrModel, logits.DataType)
	}
	if len(logits.Shape) == 3 && logits.Shape[2].Param == "" && logits.Shape[2].Value > 0 {
		sig.vocabSize = int(logits.Shape[2].Value)
	}
	sig.layers = len(keys)
	if len(values) != len(keys) {
		return sig, fmt.Errorf("%w: %d past keys but %d past values", ErrModel, len(keys), len(values))
	}
	if sig.layers > 0 && !sig.hasMask {
		return sig, fmt.Errorf("%w: cache inputs without %q", ErrModel, inputMask)
	}
	sig.inPlace = sig.layers > 0
	for l := 0; l < sig.layers; l++ {
		for _, vi := range []onnx.ValueInfo{keys[l], values[l]} {
			if vi.Name == "" {
				return sig, fmt.Errorf("%w: cache inputs are not numbered 0..%d", ErrModel, sig.layers-1)
			}
			h, dh, err := cacheDims(vi)
			if err != nil {
				return sig, err
			}
			if sig.heads == 0 {
				sig.heads, sig.headDim = h, dh
			} else if h != sig.heads || dh != sig.headDim {
				return sig, fmt.Errorf("%w: %q has H=%d Dh=%d, layer 0 has H=%d Dh=%d", ErrModel, vi.Name, h, dh, sig.heads, sig.headDim)
			}
		}
		for i, name := range []string{presentName(l, "key"), presentName(l, "value")} {
			o, ok := outs[name]
			if !ok {
				return sig, fmt.Errorf("%w: no %q output", ErrModel, name)
			}
			past := []onnx.ValueInfo{keys[l], values[l]}[i]
			sig.inPlace = sig.inPlace && sharesLength(past, o)
		}
	}
	return sig, nil
}

// cacheName parses "<prefix>N.key" or "<prefix>N.value".
func cacheName(name, prefix string) (layer int, kind string, ok bool) {
	num, kind, found := strings.Cut(strings.TrimPrefix(name, prefix), ".")
	if !found || (kind != "key" && kind != "value") {
		return 0, "", false
	}
	l, err := strconv.Atoi(num)
	if err != nil || l < 0 || strconv.Itoa(l) != num {
		return 0, "", false
	}
	return l, kind, true
}

// cacheDims checks a past_key_values input and returns its H and Dh.
func cacheDims(vi onnx.ValueInfo) (h, dh int64, err error) {
	if vi.DataType != onnx.Float {
		return 0, 0, fmt.Errorf("%w: %q is %v, want float", ErrModel, vi.Name, vi.DataType)
	}
	if len(vi.Shape) != 4 {
		return 0, 0, fmt.Errorf("%w: %q has rank %d, want 4 [B,H,P,Dh]", ErrModel, vi.Name, len(vi.Shape))
	}
	h, dh = vi.Shape[1].Value, vi.Shape[3].Value
	if vi.Shape[1].Param != "" || vi.Shape[3].Param != "" || h <= 0 || dh <= 0 {
		return 0, 0, fmt.Errorf("%w: %q needs fixed head count and head size", ErrModel, vi.Name)
	}
	return h, dh, nil
}

// sharesLength reports whether a past input and its present output have
// the same symbolic sequence length (axis 2).
func sharesLength(past, present onnx.ValueInfo) bool {
	if len(past.Shape) != 4 || len(present.Shape) != 4 {
		return false
	}
	p := past.Shape[2].Param
	return p != "" && p == present.Shape[2].Param
}

// pastName and presentName build the cache tensor names of layer l.
func pastName(l int, kind string) string    { return pastPrefix + strconv.Itoa(l) + "." + kind }
func presentName(l int, kind string) string { return presentPrefix + strconv.Itoa(l) + "." + kind }

// Layers returns the number of cached layers (0 for a graph without a cache).
func (m *Model) Layers() int { return m.sig.layers }

// HasCache reports whether the graph takes a KV cache.
func (m *Model) HasCache() bool { return m.sig.layers > 0 }

// InPlace reports whether the graph updates a fixed-size KV cache in place
// (see Load) rather than returning a grown copy every step.
func (m *Model) InPlace() bool { return m.sig.inPlace }

// session returns the cached-decoding session (cache true) or the
// logits-only session, creating it on first use.
func (m *Model) session(cache bool) (*ort.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.close {
		return nil, ort.ErrClosed
	}
	slot, outs := &m.full, []string{outputLogits}
	if cache {
		slot = &m.kv
		for l := 0; l < m.sig.layers; l++ {
			outs = append(outs, presentName(l, "key"), presentName(l, "value"))
		}
	}
	if *slot == nil {
		var s *ort.Session
		var err error
		if m.graph != nil {
			s, err = m.rt.NewModelSession(m.graph, nil, outs)
		} else {
			s, err = m.rt.NewSession(m.data, nil, outs)
		}
		if err != nil {
			return nil, err
		}
		*slot = s
	}
	return *slot, nil
}

// Prepare creates the session Generate will use by default (the KV-cache
// one, or the full-recompute one for a graph without a cache) now rather
// than on the first Generate call, so that a sampler can have a new weight
// version ready before switching to it.
func (m *Model) Prepare() error {
	_, err := m.session(m.HasCache())
	return err
}

// Close releases the model's sessions.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.close = true
	var errs []error
	for _, s := range []*ort.Session{m.kv, m.full} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	m.kv, m.full = nil, nil
	m.data, m.graph = nil, nil
	return errors.Join(errs...)
}
