package dataset

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// DefaultMaxLineBytes is the longest line, in bytes without the newline,
// Read accepts when Options.MaxLineBytes is zero: 1 MiB.
const DefaultMaxLineBytes = 1 << 20

// Options tunes Read and Load.
type Options struct {
	// MaxLineBytes is the longest line accepted, in bytes without the
	// newline; longer lines are bad lines (ErrLineTooLong). Zero means
	// DefaultMaxLineBytes.
	MaxLineBytes int
	// FailFast stops at the first bad line and returns it as the error.
	// Without it, bad lines are collected in Result.Bad and loading goes on.
	FailFast bool
}

// BadLine is a line that was not loaded, and why.
type BadLine struct {
	// Line is the 1-based line number.
	Line int
	// Err is the reason; it matches one of the package's errors.
	Err error
}

// Error returns "line N: reason".
func (b BadLine) Error() string { return fmt.Sprintf("line %d: %v", b.Line, b.Err) }

// Unwrap returns the reason, so errors.Is sees the package's errors.
func (b BadLine) Unwrap() error { return b.Err }

// Result is what Read loaded from one stream.
type Result struct {
	// Records are the good lines, in file order.
	Records []Record
	// Bad are the bad lines, in file order.
	Bad []BadLine
	// Blank counts lines that are empty or only whitespace (skipped).
	Blank int
	// Lines counts every line read: len(Records) + len(Bad) + Blank.
	Lines int
}

// Read streams JSONL lines from r (see the package comment for the format)
// and returns the good records with every bad line and its reason. The
// error is non-nil only for a read error of r, or with opts.FailFast for
// the first bad line (a BadLine, matching its reason); the Result then holds
// what was read before it.
func Read(r io.Reader, opts Options) (*Result, error) {
	limit := opts.MaxLineBytes
	if limit <= 0 {
		limit = DefaultMaxLineBytes
	}
	// Room for the line, a carriage return and the newline.
	br := bufio.NewReaderSize(r, limit+2)
	res := &Result{}
	ids := map[string]int{} // id -> line it was first seen on
	for {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of the line; it is reported, not loaded.
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if len(line) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return res, nil
			}
			return res, fmt.Errorf("dataset: read after line %d: %w", res.Lines, err)
		}
		res.Lines++
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		var bad error
		switch {
		case tooLong || len(line) > limit:
			bad = fmt.Errorf("%w: longer than %d bytes", ErrLineTooLong, limit)
		case len(bytes.TrimSpace(line)) == 0:
			res.Blank++
		default:
			rec, derr := DecodeLine(line)
			if derr == nil && rec.ID != "" {
				if first, dup := ids[rec.ID]; dup {
					derr = fmt.Errorf("%w: %q repeats line %d", ErrID, rec.ID, first)
				} else {
					ids[rec.ID] = res.Lines
				}
			}
			if derr != nil {
				bad = derr
				break
			}
			rec.Line = res.Lines
			res.Records = append(res.Records, rec)
		}
		if bad != nil {
			b := BadLine{Line: res.Lines, Err: bad}
			if opts.FailFast {
				return res, b
			}
			res.Bad = append(res.Bad, b)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return res, nil
			}
			return res, fmt.Errorf("dataset: read after line %d: %w", res.Lines, err)
		}
	}
}

// Load reads the JSONL file at path; see Read.
func Load(path string, opts Options) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	res, err := Read(f, opts)
	if err != nil {
		return res, fmt.Errorf("dataset: %s: %w", path, err)
	}
	return res, nil
}
