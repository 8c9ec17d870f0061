package arith

import "errors"

// Errors returned by this package; test with errors.Is.
var (
	// ErrSyntax means an expression's text is not a well-formed arith
	// expression (the message says what was found where).
	ErrSyntax = errors.New("arith: syntax error")
	// ErrOverflow means a value of an expression does not fit in an int64.
	ErrOverflow = errors.New("arith: integer overflow")
	// ErrConfig means a Config is out of range or inconsistent.
	ErrConfig = errors.New("arith: invalid config")
)
