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
)
