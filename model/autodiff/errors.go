package autodiff

import "errors"

// Sentinel errors returned (wrapped) by this package; test with errors.Is.
var (
	// ErrUnsupportedOp means a node on the path from a weight to the loss has
	// no gradient rule, or uses a form of the operator the rule does not cover.
	ErrUnsupportedOp = errors.New("autodiff: unsupported operator")
	// ErrUnknownValue means a name given to Build (loss, weight, output) is not
	// a value of the graph, or a weight is not a floating-point initializer.
	ErrUnknownValue = errors.New("autodiff: unknown value")
	// ErrUnknownRank means a gradient rule needs a tensor's rank and shape
	// inference could not determine it.
	ErrUnknownRank = errors.New("autodiff: rank not inferable")
	// ErrOpset means the graph's opset is older than the rules support.
	ErrOpset = errors.New("autodiff: opset too old")
)
