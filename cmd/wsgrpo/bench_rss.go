package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"

	"github.com/wsgrpo/wsgrpo/bench/learning"
	"github.com/wsgrpo/wsgrpo/model/ort"
)

// envRSSChild, when set, makes the process a child of benchLearnerRSS: it
// holds an rssSpec in JSON; the process runs it, prints an rssReport in
// JSON and exits.
const envRSSChild = "WSGRPO_BENCH_RSS_CHILD"

// rssSpec is what a memory child measures.
type rssSpec struct {
	ORT      ort.Config
	Learning learning.Options
}

// rssPoint is the process's peak and current resident set at one point.
type rssPoint struct {
	Point    string
	HWM, RSS uint64
}

// rssReport is a child's answer.
type rssReport struct {
	Params int64
	Points []rssPoint
}

// rssChild runs the spec in env (a child process of benchLearnerRSS) and
// returns the exit status.
func rssChild(spec string) int {
	if err := runRSSChild(spec); err != nil {
		fmt.Fprintln(os.Stderr, "rss child:", err)
		return 1
	}
	return 0
}

func runRSSChild(spec string) error {
	var s rssSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return err
	}
	var rep rssReport
	probe := func(point string) {
		hwm, err1 := procStatusKiB("VmHWM")
		rss, err2 := procStatusKiB("VmRSS")
		if err1 == nil && err2 == nil {
			rep.Points = append(rep.Points, rssPoint{Point: point, HWM: hwm, RSS: rss})
		}
	}
	probe("start")
	rt, err := ort.Init(s.ORT, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	probe("runtime")
	s.Learning.NoRaw, s.Learning.Probe = true, probe
	res, err := learning.Run(context.Background(), rt, s.Learning)
	if err != nil {
		return err
	}
	rep.Params = res.Params
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// benchLearnerRSS measures the learner's peak resident set (VmHWM) in a
// fresh child process per micro-batch size: d_model 256, 4 layers, 32
// groups x G 8 = 256 sequences of 100 tokens per update, 3 updates.
func benchLearnerRSS(ctx context.Context, b *benchEnv) error {
	o := learning.Options{DModel: 256, Layers: 4, Groups: 32, G: 8, Prompt: 10, Completion: 91, Updates: 3}
	if b.quick {
		o = learning.Options{DModel: 32, Layers: 1, Groups: 2, G: 4, Prompt: 5, Completion: 11, Updates: 1}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tw := b.table(fmt.Sprintf("learner peak RSS (VmHWM, own process; d_model %d, %d layers, %d groups x G %d = %d sequences of %d tokens, %d updates, KL on)",
		o.DModel, o.Layers, o.Groups, o.G, o.Groups*o.G, o.Prompt+o.Completion-1, o.Updates),
		"micro-batch", "params", "weights+AdamW MiB", "runtime up", "learner built", "after update 1", "after last update", "RSS at end")
	mib := func(v uint64) string { return fmt.Sprintf("%.0f MiB", float64(v)/(1<<20)) }
	for _, mb := range []int{16, 64} {
		oo := o
		oo.MicroBatch = mb
		spec, err := json.Marshal(rssSpec{ORT: b.cfg.ortConfig(), Learning: oo})
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, self)
		cmd.Env = append(os.Environ(), envRSSChild+"="+string(spec))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("rss child (micro-batch %d): %w: %s", mb, err, stderr.String())
		}
		var rep rssReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			return fmt.Errorf("rss child (micro-batch %d) said %q: %w", mb, stdout.String(), err)
		}
		at := map[string]rssPoint{}
		for _, p := range rep.Points {
			at[p.Point] = p
		}
		last := rep.Points[len(rep.Points)-1]
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\n", mb, rep.Params, float64(rep.Params*4*3)/(1<<20),
			mib(at["runtime"].HWM), mib(at["ready"].HWM), mib(at["update 1"].HWM), mib(last.HWM), mib(last.RSS))
	}
	return tw.Flush()
}
