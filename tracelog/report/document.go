package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrPlot wraps a failure to render or write a plot.
var ErrPlot = errors.New("report: plot failed")

// Output file names Write produces besides the plots.
const (
	// MarkdownFile is the markdown summary.
	MarkdownFile = "summary.md"
	// JSONFile is the Document as JSON.
	JSONFile = "report.json"
)

// Document is what `wsgrpo report` writes: the report of a run and,
// optionally, of a second run compared against it.
type Document struct {
	Report     *Report     `json:"report"`
	Other      *Report     `json:"other,omitempty"`
	Comparison *Comparison `json:"comparison,omitempty"`
	// Plots lists the PNG files Write rendered.
	Plots []Plot `json:"plots,omitempty"`
}

// NewDocument returns the document of r, compared with other when other is
// not nil (r is the base: deltas are other minus r).
func NewDocument(r, other *Report) *Document {
	d := &Document{Report: r}
	if other != nil {
		d.Other = other
		d.Comparison = Compare(r, other)
	}
	return d
}

func (d *Document) reports() []*Report {
	if d.Other != nil {
		return []*Report{d.Report, d.Other}
	}
	return []*Report{d.Report}
}

// Files are the paths Write wrote.
type Files struct {
	Dir      string   `json:"dir"`
	Markdown string   `json:"markdown"`
	JSON     string   `json:"json"`
	Plots    []string `json:"plots"`
}

// Write creates dir and writes the plots, the markdown summary (which
// references the plots by relative path) and the JSON of d into it. Each
// file is written under a temporary name and renamed when complete: a
// failure part-way (a full disk) leaves no truncated file, and an earlier
// report's file of that name as it was.
func (d *Document) Write(dir string) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("report: output directory: %w", err)
	}
	plots, err := d.WritePlots(dir)
	if err != nil {
		return Files{}, err
	}
	d.Plots = plots
	f := Files{Dir: dir, Markdown: filepath.Join(dir, MarkdownFile), JSON: filepath.Join(dir, JSONFile)}
	for _, p := range plots {
		f.Plots = append(f.Plots, filepath.Join(dir, p.File))
	}
	var md bytes.Buffer
	d.markdown(&md)
	if err := writeBytesAtomic(f.Markdown, md.Bytes()); err != nil {
		return Files{}, fmt.Errorf("report: %w", err)
	}
	js, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return Files{}, fmt.Errorf("report: %w", err)
	}
	if err := writeBytesAtomic(f.JSON, append(js, '\n')); err != nil {
		return Files{}, fmt.Errorf("report: %w", err)
	}
	return f, nil
}
