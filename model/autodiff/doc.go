// Package autodiff turns an ONNX forward graph into a training graph: the
// forward computation, a scalar loss, and the reverse-mode gradient of that
// loss with respect to chosen weights, written in standard ONNX operators
// (default domain, opset 13 or later) so that ONNX Runtime runs the whole
// training step. The chosen weights stop being initializers and become graph
// inputs, so one ONNX Runtime session serves every step while the optimizer
// (package optim) updates the weights in Go.
//
// Shapes may be symbolic: wherever a gradient must be reduced back to a
// broadcast input's shape and the shapes are not known when the graph is
// built, the reduction axes are computed at run time with Shape, NonZero and
// ReduceSum nodes.
package autodiff
