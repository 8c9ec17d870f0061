package ort

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrProfile means an ONNX Runtime profile could not be read.
var ErrProfile = errors.New("ort: bad profile")

// Profile summarises an ONNX Runtime profile, the Chrome-trace JSON file a
// session writes on Close when Config.ProfilePrefix is set.
type Profile struct {
	// Runs holds the wall time of every Session.Run, in order.
	Runs []time.Duration
	// Nodes holds each graph node's kernel time, by node name.
	Nodes map[string]NodeProfile
}

// NodeProfile is one node's kernel time over the profiled runs.
type NodeProfile struct {
	// Op is the node's operator type as executed (after ONNX Runtime's
	// fusions, e.g. "FusedMatMul").
	Op string
	// Calls is how many times the kernel ran.
	Calls int
	// Total is the summed kernel time; Min the fastest single call.
	Total, Min time.Duration
}

// traceEvent is the part of a Chrome-trace event that Profile reads.
type traceEvent struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Dur  int64  `json:"dur"` // microseconds
	Args struct {
		OpName string `json:"op_name"`
	} `json:"args"`
}

// kernelSuffix ends the name of a node's kernel-time event.
const kernelSuffix = "_kernel_time"

// ReadProfile parses an ONNX Runtime profile. Malformed input gives
// ErrProfile.
func ReadProfile(r io.Reader) (*Profile, error) {
	var events []traceEvent
	if err := json.NewDecoder(r).Decode(&events); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProfile, err)
	}
	p := &Profile{Nodes: map[string]NodeProfile{}}
	for _, e := range events {
		if e.Dur < 0 {
			return nil, fmt.Errorf("%w: event %q has negative duration %d", ErrProfile, e.Name, e.Dur)
		}
		d := time.Duration(e.Dur) * time.Microsecond
		switch {
		case e.Cat == "Session" && e.Name == "model_run":
			p.Runs = append(p.Runs, d)
		case e.Cat == "Node" && strings.HasSuffix(e.Name, kernelSuffix):
			name := strings.TrimSuffix(e.Name, kernelSuffix)
			n, seen := p.Nodes[name]
			n.Op = e.Args.OpName
			n.Calls++
			n.Total += d
			if !seen || d < n.Min {
				n.Min = d
			}
			p.Nodes[name] = n
		}
	}
	return p, nil
}

// KernelTime returns the summed kernel time of the nodes whose operator
// type satisfies keep (all nodes for a nil keep): total over all calls, and
// the sum of each node's fastest call (a contention-free estimate of one
// run when every node ran once per run).
func (p *Profile) KernelTime(keep func(op string) bool) (total, fastest time.Duration) {
	for _, n := range p.Nodes {
		if keep == nil || keep(n.Op) {
			total += n.Total
			fastest += n.Min
		}
	}
	return total, fastest
}
