// Package train turns forward ONNX graphs into trainable ones: it appends
// losses (masked next-token cross-entropy, the clipped GRPO surrogate with a
// k3 KL penalty, and the Bradley-Terry preference loss) as ONNX nodes, so
// that package autodiff differentiates them together with the model, and its
// Trainer runs the resulting training graph in ONNX Runtime while package
// optim applies AdamW to the weights in Go.
package train
