package labeler

import "errors"

// Errors returned by this package; test with errors.Is.
var (
	// ErrInput means sequences or rollouts cannot be featurized: an empty
	// prompt, a sequence longer than the reference policy's MaxSeq, step
	// ends out of order or past the completion, a position outside its
	// sequence. Retrying cannot fix it.
	ErrInput = errors.New("labeler: input cannot be featurized")
	// ErrModelSize means a preference model's input width differs from the
	// reference policy's d_model, or its weights from its metadata.
	ErrModelSize = errors.New("labeler: model size mismatch")
	// ErrReference means a preference model was fitted on another
	// reference policy's features than the featurizer's.
	ErrReference = errors.New("labeler: reference policy mismatch")
	// ErrArtifact means a saved labeler is malformed: unreadable metadata,
	// another format or version, or an id that does not match its content.
	ErrArtifact = errors.New("labeler: malformed artifact")
	// ErrConfig means a fit configuration is out of range.
	ErrConfig = errors.New("labeler: invalid fit config")
	// ErrPairs means the pairs cannot train a model: none, features of
	// different widths, or no group left for training after the held-out
	// split.
	ErrPairs = errors.New("labeler: unusable pairs")
	// ErrScore means a model produced a non-finite score.
	ErrScore = errors.New("labeler: non-finite score")
)
