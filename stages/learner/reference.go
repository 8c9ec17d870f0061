package learner

import (
	"fmt"

	"github.com/wsgrpo/wsgrpo/model/onnx"
	"github.com/wsgrpo/wsgrpo/model/ort"
	"github.com/wsgrpo/wsgrpo/model/policy"
	"github.com/wsgrpo/wsgrpo/model/train"
)

// scorer computes a frozen policy's log-probabilities of sequences' tokens
// with an ONNX Runtime session of the full-sequence graph: the reference
// policy's, for the KL term.
type scorer struct {
	sess   *ort.Session
	pad    int32
	maxSeq int
}

// newScorer opens a session for the initial (reference) weights of m.
func newScorer(rt *ort.Runtime, pm policyModel, pad int32) (*scorer, error) {
	m, err := pm.fullGraph(pm.weights())
	if err != nil {
		return nil, err
	}
	if _, err := train.AppendTargetLogprobs(m.Graph, onnx.Float, policy.OutputLogits); err != nil {
		return nil, err
	}
	// NewModelSession: a Hugging Face model's weights may pass the 2 GiB
	// that one protobuf holds.
	s, err := rt.NewModelSession(m, []string{policy.InputIDs, policy.InputMask, train.InputTargets}, []string{train.OutputTargetLogprobs})
	if err != nil {
		return nil, err
	}
	return &scorer{sess: s, pad: pad, maxSeq: pm.maxSeq()}, nil
}

// logprobs returns, for every sequence (prompt ids followed by completion
// ids; prompts[i] is the prompt's length), the log-probability of each
// completion token given everything before it.
func (s *scorer) logprobs(seqs [][]int32, prompts []int) ([][]float32, error) {
	inputs := make([][]int32, len(seqs))
	for i, q := range seqs {
		inputs[i] = q[:len(q)-1]
	}
	b, err := policy.NewBatch(inputs, s.pad, false, s.maxSeq)
	if err != nil {
		return nil, err
	}
	targets := make([]int64, b.Rows*b.Len)
	for i, q := range seqs {
		for j := 0; j+1 < len(q); j++ {
			targets[i*b.Len+j] = int64(q[j+1])
		}
	}
	shape := []int64{int64(b.Rows), int64(b.Len)}
	out, err := s.sess.Run(map[string]*ort.Tensor{
		policy.InputIDs:    ort.I64Tensor(b.IDs, shape...),
		policy.InputMask:   ort.I64Tensor(b.Mask, shape...),
		train.InputTargets: ort.I64Tensor(targets, shape...),
	})
	if err != nil {
		return nil, fmt.Errorf("reference forward: %w", err)
	}
	lp := out[train.OutputTargetLogprobs].F32
	res := make([][]float32, len(seqs))
	for i, q := range seqs {
		p := prompts[i]
		row := lp[i*b.Len : (i+1)*b.Len]
		res[i] = append([]float32(nil), row[p-1:len(q)-1]...)
	}
	return res, nil
}

// Close releases the session.
func (s *scorer) Close() error { return s.sess.Close() }
