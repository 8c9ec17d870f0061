package ort

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// Session is one loaded model. Run may be called concurrently; Close waits
// for running calls and makes later ones fail with ErrClosed.
type Session struct {
	mu      sync.RWMutex
	s       *ortgo.DynamicAdvancedSession
	inputs  []string
	outputs []string
	inInfo  map[string]onnx.ValueInfo
	outInfo []onnx.ValueInfo
	log     *slog.Logger
}

// NewSession loads an encoded ONNX model. inputs and outputs name the graph
// inputs the caller will feed and the graph outputs Run returns; nil means
// all of them, in graph order. A model ONNX Runtime rejects gives
// ErrBadModel; names the graph lacks give ErrBadInput.
func (r *Runtime) NewSession(model []byte, inputs, outputs []string) (*Session, error) {
	return r.newSession(model, inputs, outputs, func(opts *ortgo.SessionOptions, inputs, outputs []string) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, opts)
	})
}

// createFunc creates the ONNX Runtime session of newSession with the
// options it built.
type createFunc func(opts *ortgo.SessionOptions, inputs, outputs []string) (*ortgo.DynamicAdvancedSession, error)

// newSession checks inputs and outputs against the signature of the
// encoded model and creates the session with create.
func (r *Runtime) newSession(model []byte, inputs, outputs []string, create createFunc) (*Session, error) {
	sig, err := onnx.ReadSignature(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	inInfo := make(map[string]onnx.ValueInfo, len(sig.Inputs))
	for _, vi := range sig.Inputs {
		inInfo[vi.Name] = vi
	}
	outByName := make(map[string]onnx.ValueInfo, len(sig.Outputs))
	for _, vi := range sig.Outputs {
		outByName[vi.Name] = vi
	}
	if inputs == nil {
		inputs = names(sig.Inputs)
	}
	if outputs == nil {
		outputs = names(sig.Outputs)
	}
	if len(inputs) == 0 || len(outputs) == 0 {
		return nil, fmt.Errorf("%w: a session needs at least one input and one output (model has inputs %v, outputs %v)",
			ErrBadModel, names(sig.Inputs), names(sig.Outputs))
	}
	for _, in := range inputs {
		if _, ok := inInfo[in]; !ok {
			return nil, fmt.Errorf("%w: model has no input %q (inputs: %v)", ErrBadInput, in, names(sig.Inputs))
		}
	}
	outInfo := make([]onnx.ValueInfo, len(outputs))
	for i, out := range outputs {
		vi, ok := outByName[out]
		if !ok {
			return nil, fmt.Errorf("%w: model has no output %q (outputs: %v)", ErrBadInput, out, names(sig.Outputs))
		}
		outInfo[i] = vi
	}
	opts, err := r.sessionOptions()
	if err != nil {
		return nil, err
	}
	defer func() { _ = opts.Destroy() }()
	s, err := create(opts, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	r.log.Debug("ONNX session created", "bytes", len(model), "inputs", inputs, "outputs", outputs,
		"provider", r.provider)
	return &Session{
		s:       s,
		inputs:  slices.Clone(inputs),
		outputs: slices.Clone(outputs),
		inInfo:  inInfo,
		outInfo: outInfo,
		log:     r.log,
	}, nil
}

func names(vis []onnx.ValueInfo) []string {
	out := make([]string, len(vis))
	for i, vi := range vis {
		out[i] = vi.Name
	}
	return out
}

// Inputs returns the input names Run expects.
func (s *Session) Inputs() []string { return slices.Clone(s.inputs) }

// Outputs returns the output names Run returns.
func (s *Session) Outputs() []string { return slices.Clone(s.outputs) }

// Run feeds inputs (exactly the session's input names) and returns the
// session's outputs by name. The returned tensors are Go-owned and stay
// valid after Close. Input data is read, not copied or modified. Inputs that
// disagree with the session or the model's declared types and shapes give
// ErrBadInput before ONNX Runtime is called; failures inside ONNX Runtime
// give ErrRun.
func (s *Session) Run(inputs map[string]*Tensor) (map[string]*Tensor, error) {
	return s.RunInto(inputs, nil)
}

// RunInto is Run with caller-provided output buffers. Each tensor in outs,
// keyed by one of the session's output names, must have the exact type and
// shape ONNX Runtime will produce; ONNX Runtime writes the result straight
// into its slice, so no output copy or allocation happens for it (reusing
// buffers across calls avoids both). The returned map holds those same
// tensors and the remaining outputs as Run returns them. A buffer that
// names no session output, or is malformed, gives ErrBadInput; a shape that
// disagrees with the computed one gives ErrRun. An output may share memory
// with an input only where the graph computes that output in place from
// that input (a fixed-size KV cache whose attention node writes only the new
// positions, as policy.InPlaceKVGraph's GroupQueryAttention does); otherwise
// inputs and outputs must not share memory.
func (s *Session) RunInto(inputs, outs map[string]*Tensor) (map[string]*Tensor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return nil, ErrClosed
	}
	if err := s.checkInputs(inputs); err != nil {
		return nil, err
	}
	if err := s.checkOutputs(outs); err != nil {
		return nil, err
	}
	in := make([]ortgo.Value, len(s.inputs))
	out := make([]ortgo.Value, len(s.outputs))
	defer func() {
		for _, v := range slices.Concat(in, out) {
			destroy(v)
		}
	}()
	for i, name := range s.inputs {
		v, err := inputs[name].toValue()
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %w", ErrBadInput, name, err)
		}
		in[i] = v
	}
	for i, vi := range s.outInfo {
		if t := outs[vi.Name]; t != nil {
			v, err := t.toValue()
			if err != nil {
				return nil, fmt.Errorf("%w: output %q: %w", ErrBadInput, vi.Name, err)
			}
			out[i] = v
			continue
		}
		if vi.Shape != nil && len(vi.Shape) == 0 {
			v, err := newScalarOutput(vi.DataType)
			if err != nil {
				return nil, fmt.Errorf("%w: output %q: %w", ErrRun, vi.Name, err)
			}
			out[i] = v
		}
	}
	if err := s.s.Run(in, out); err != nil {
		return nil, fmt.Errorf("%w: %w%s", ErrRun, err, s.unknownRankHint())
	}
	res := make(map[string]*Tensor, len(out))
	for i, v := range out {
		name := s.outputs[i]
		if t := outs[name]; t != nil {
			if len(t.Shape) == 0 {
				// Scalars are bound by value, not over t's slice.
				if err := copyScalar(t, v); err != nil {
					return nil, fmt.Errorf("output %q: %w", name, err)
				}
			}
			res[name] = t
			continue
		}
		if v == nil {
			return nil, fmt.Errorf("%w: output %q was not produced", ErrRun, name)
		}
		t, err := fromValue(v)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", name, err)
		}
		res[name] = t
	}
	return res, nil
}

// copyScalar copies the rank-0 value v into t's one element.
func copyScalar(t *Tensor, v ortgo.Value) error {
	got, err := fromValue(v)
	if err != nil {
		return err
	}
	switch t.Type {
	case onnx.Float:
		copy(t.F32, got.F32)
	case onnx.Double:
		copy(t.F64, got.F64)
	case onnx.Int64:
		copy(t.I64, got.I64)
	case onnx.Int32:
		copy(t.I32, got.I32)
	case onnx.Bool:
		copy(t.Bool, got.Bool)
	}
	return nil
}

// checkOutputs verifies caller-provided output buffers: known names,
// self-consistent tensors that agree with the declared outputs.
func (s *Session) checkOutputs(outs map[string]*Tensor) error {
	var errs []error
	for name, t := range outs {
		i := slices.Index(s.outputs, name)
		if i < 0 {
			errs = append(errs, fmt.Errorf("%w: output buffer for %q, which the session does not return (outputs: %v)", ErrBadInput, name, s.outputs))
			continue
		}
		if t == nil {
			continue
		}
		if err := t.check(); err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", name, err))
			continue
		}
		if err := conforms(t, s.outInfo[i]); err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// unknownRankHint explains the likely cause of a failed run when some output
// has no declared shape: the Go binding cannot return a rank-0 value that ONNX
// Runtime allocated, so scalar outputs must be declared with rank 0.
func (s *Session) unknownRankHint() string {
	var unknown []string
	for _, vi := range s.outInfo {
		if vi.Shape == nil {
			unknown = append(unknown, vi.Name)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	return fmt.Sprintf(" (outputs %v have no declared shape; if one is a scalar, declare it with rank 0, e.g. onnx.Builder.Output with no dims)", unknown)
}

// destroy releases v, tolerating nil and typed-nil values (the binding can
// leave the latter behind when converting an output fails).
func destroy(v ortgo.Value) {
	if v == nil {
		return
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return
	}
	_ = v.Destroy()
}

// checkInputs verifies names, self-consistency, and agreement with the
// model's declared input types and fixed dimensions.
func (s *Session) checkInputs(inputs map[string]*Tensor) error {
	var errs []error
	for _, name := range s.inputs {
		t, ok := inputs[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: missing input %q (session inputs: %v)", ErrBadInput, name, s.inputs))
			continue
		}
		if err := t.check(); err != nil {
			errs = append(errs, fmt.Errorf("input %q: %w", name, err))
			continue
		}
		if err := conforms(t, s.inInfo[name]); err != nil {
			errs = append(errs, fmt.Errorf("input %q: %w", name, err))
		}
	}
	for name := range inputs {
		if !slices.Contains(s.inputs, name) {
			errs = append(errs, fmt.Errorf("%w: unexpected input %q (session inputs: %v)", ErrBadInput, name, s.inputs))
		}
	}
	return errors.Join(errs...)
}

// conforms checks t against a declared graph input.
func conforms(t *Tensor, vi onnx.ValueInfo) error {
	if vi.DataType != onnx.Undefined && vi.DataType != t.Type {
		return fmt.Errorf("%w: type %s, model declares %s", ErrBadInput, t.Type, vi.DataType)
	}
	if vi.Shape == nil {
		return nil
	}
	if len(vi.Shape) != len(t.Shape) {
		return fmt.Errorf("%w: shape %v has rank %d, model declares rank %d", ErrBadInput, t.Shape, len(t.Shape), len(vi.Shape))
	}
	for i, d := range vi.Shape {
		if d.Param == "" && d.Value > 0 && d.Value != t.Shape[i] {
			return fmt.Errorf("%w: shape %v, model declares dimension %d = %d", ErrBadInput, t.Shape, i, d.Value)
		}
	}
	return nil
}

// Close releases the session. It is safe to call more than once.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	if err != nil {
		return fmt.Errorf("ort: destroy session: %w", err)
	}
	return nil
}
