package replay

import "errors"

// Sentinel errors, tested with errors.Is.
var (
	// ErrTarget is returned for a target other than sampler, verifier,
	// labeler or learner.
	ErrTarget = errors.New("replay: unknown target")
	// ErrSteps is returned for a --steps range that does not parse.
	ErrSteps = errors.New("replay: bad step range")
	// ErrWhere is returned for a --where expression that ValidateWhere
	// refuses.
	ErrWhere = errors.New("replay: --where refused")
	// ErrEmpty is returned when the selection holds no row.
	ErrEmpty = errors.New("replay: nothing to replay")
	// ErrSource is returned for a source that does not exist or holds no
	// trajectory log.
	ErrSource = errors.New("replay: no trajectory log at source")
	// ErrStream is returned when the target stream is missing or would drop
	// what is published to it.
	ErrStream = errors.New("replay: target stream not ready")
	// ErrUnlabeled is returned when a replay into the learner selects rows
	// that were never labeled.
	ErrUnlabeled = errors.New("replay: rows were never labeled")
	// ErrOptions is returned for options that cannot work.
	ErrOptions = errors.New("replay: invalid options")
)
