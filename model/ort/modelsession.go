package ort

import (
	"fmt"
	"os"
	"runtime"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// ExternalLocation is the external-data file name that NewModelSession
// gives the initializers it hands to ONNX Runtime from memory. No such
// file is read or written: the name only ties each reference in the
// encoded model to the data supplied with it.
const ExternalLocation = "wsgrpo-initializers.bin"

// InMemoryAbove is the total tensor data from which NewModelSession hands a
// model's large initializers to ONNX Runtime from memory instead of
// encoding them in the protobuf: 1 GiB, well below protobuf's 2 GiB limit.
// Below it the plain encoding is used, which ONNX Runtime parses as fast
// for small models and which the rest of wsgrpo already exercises.
const InMemoryAbove = 1 << 30

// NewModelSession creates a session for an in-memory model of any size.
// A model with less than InMemoryAbove bytes of tensor data is encoded
// whole (as NewSession takes it); a larger one, which a single protobuf
// may not hold, is encoded without its initializers of at least
// onnx.DefaultExternalThreshold bytes, and those are handed over from
// memory (NewSessionExternal). inputs and outputs are as for NewSession.
// Either way ONNX Runtime holds its own copy of the weights once the
// session exists; m is not referenced afterwards.
func (r *Runtime) NewModelSession(m *onnx.Model, inputs, outputs []string) (*Session, error) {
	if m.Graph == nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, onnx.ErrNoGraph)
	}
	size := int64(0)
	for _, t := range m.Graph.Initializers {
		if t != nil {
			size += t.DataSize()
		}
	}
	if size < InMemoryAbove {
		b, err := m.Marshal()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
		}
		return r.NewSession(b, inputs, outputs)
	}
	b, ext, err := m.MarshalExternal(ExternalLocation, onnx.DefaultExternalThreshold)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	return r.NewSessionExternal(b, ext, inputs, outputs)
}

// NewSessionExternal creates a session from a model encoded by
// onnx.Model.MarshalExternal, handing ONNX Runtime the data of its external
// initializers ext from memory (OrtApi::AddExternalInitializers), so that
// the weights are neither serialised into a protobuf nor written to disk:
// each tensor's Go memory is wrapped as it is (no Go copy), and ONNX
// Runtime copies it into its graph in place of the external reference of
// the same name before optimising the graph (the C API documents that
// copy, and a test checks it). The tensors are therefore needed only
// during the call: afterwards the caller may change or drop them. A model
// whose external references ext does not cover, or a tensor disagreeing
// with its reference, gives ErrBadModel. inputs and outputs are as for
// NewSession.
func (r *Runtime) NewSessionExternal(model []byte, ext []onnx.ExternalTensor, inputs, outputs []string) (*Session, error) {
	defer runtime.KeepAlive(ext)
	return r.newSession(model, inputs, outputs, func(opts *ortgo.SessionOptions, inputs, outputs []string) (*ortgo.DynamicAdvancedSession, error) {
		release, err := addExternalInitializers(opts, ext)
		if err != nil {
			return nil, err
		}
		defer release()
		return ortgo.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, opts)
	})
}

// NewSessionFromFile creates a session from a model file, such as one
// written by onnx.Model.SaveExternal; ONNX Runtime reads external tensor
// data from the files named beside it (memory-mapping what it can).
// inputs and outputs are as for NewSession.
func (r *Runtime) NewSessionFromFile(path string, inputs, outputs []string) (*Session, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	return r.newSession(b, inputs, outputs, func(opts *ortgo.SessionOptions, inputs, outputs []string) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSession(path, inputs, outputs, opts)
	})
}
