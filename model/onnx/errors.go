package onnx

import "errors"

// Sentinel errors returned (wrapped) by this package; test with errors.Is.
var (
	// ErrMalformed means bytes are not a well-formed ONNX ModelProto encoding.
	ErrMalformed = errors.New("onnx: malformed protobuf")
	// ErrInvalidTensor means a tensor's data does not agree with its type or shape.
	ErrInvalidTensor = errors.New("onnx: invalid tensor")
	// ErrInvalidGraph means a graph is structurally wrong (dangling inputs,
	// duplicate outputs, missing graph outputs...).
	ErrInvalidGraph = errors.New("onnx: invalid graph")
	// ErrNoGraph means a model has no graph.
	ErrNoGraph = errors.New("onnx: model has no graph")
	// ErrTooLarge means a model's encoding would reach protobuf's 2 GiB
	// limit; encode its large initializers as external data instead
	// (Model.MarshalExternal, Model.SaveExternal).
	ErrTooLarge = errors.New("onnx: model too large for one protobuf (2 GiB)")
	// ErrExternalData means an external tensor's data cannot be read: its
	// location escapes the model's directory, the file is missing or
	// shorter than offset+length, or no directory was given.
	ErrExternalData = errors.New("onnx: bad external tensor data")
)
