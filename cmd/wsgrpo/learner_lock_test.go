package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/model/tokenizer"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// learnerTestConfig is the configuration of a learner of run against the
// listening server at url: the tiny random policy of tinyModel as
// train.model, its run directory (checkpoints, trajectory log) in a
// temporary directory.
func learnerTestConfig(t *testing.T, run, url string) Config {
	t.Helper()
	t.Setenv("WSGRPO_CHDB_LIB", chtest.Library(t))
	cfg := DefaultConfig()
	cfg.Run, cfg.NATS, cfg.Dir = run, url, t.TempDir()
	cfg.Log.Level = "warn"
	cfg.Train.Model = tinyModel(t) // skips without ONNX Runtime
	cfg.Learner.GroupsPerStep = 2
	// The test's rows are all sampled with version 1.
	cfg.Learner.MaxStaleness = 100
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// listeningServer starts an embedded JetStream server that stage processes
// can join.
func listeningServer(t *testing.T) *pipeline.Server {
	t.Helper()
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// learnerGroup returns the labeled rows of group number n of run (the
// group's prompt is "n+1="): size completions of the character tokenizer
// tinyModel uses, sampled with version 1, the first one correct (advantage
// 1), the others not (-1). Trajectory ids are those of a sampler.
func learnerGroup(run string, n, size int) []schemas.Labeled {
	tok := tokenizer.Default()
	prompt := fmt.Sprintf("%d+1=", n)
	pid := fmt.Sprintf("p%d", n)
	out := make([]schemas.Labeled, size)
	for i := range out {
		comp := fmt.Sprint(n + 1 + i)
		ids := append(tok.Encode(comp), tok.EOS())
		lps := make([]float32, len(ids))
		for j := range lps {
			lps[j] = -1
		}
		l := &out[i]
		l.RunID, l.Step, l.PromptID, l.Task, l.Prompt.Prompt = run, int64(n), pid, "arith", prompt
		l.TrajectoryID = schemas.TrajectoryID(run, int64(n), pid, int32(i))
		l.GroupID = schemas.GroupID(run, int64(n), pid)
		l.SampleIndex, l.GroupSize, l.PolicyVersion = int32(i), int32(size), 1
		l.Completion, l.CompletionTokenIDs, l.TokenLogprobs = comp, ids, lps
		l.StepEnds = []int32{int32(len(ids) - 1)}
		l.Correct = i == 0
		l.Advantage, l.ShapedReward = -1, 0
		if l.Correct {
			l.Advantage, l.ShapedReward = 1, 1
		}
		l.Shaper = "grpo"
	}
	return out
}

// publishLabeled publishes rows as one labeled batch under message id id.
func publishLabeled(t *testing.T, js jetstream.JetStream, topo pipeline.Topology, rows []schemas.Labeled, id string) {
	t.Helper()
	hop, err := topo.Hop(schemas.KindLabeled)
	if err != nil {
		t.Fatal(err)
	}
	publishRec(t, js, hop.Subject, schemas.NewLabeledBatch(nil, rows), id)
}

// lockHolder returns the run's learner lock, or nil when nobody holds it.
func lockHolder(t *testing.T, ctx context.Context, js jetstream.JetStream, topo pipeline.Topology) *pipeline.LockInfo {
	t.Helper()
	kv, err := js.KeyValue(ctx, topo.StateBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "lock."+pipeline.StageLearner)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var info pipeline.LockInfo
	if err := json.Unmarshal(e.Value(), &info); err != nil {
		t.Fatal(err)
	}
	return &info
}

// TestSecondLearnerRefused starts a learner stage (through the stage
// table, as `wsgrpo stage learner` does) and checks that a second one for
// the same run is refused with ErrLocked, naming the first one's host and
// pid and saying what to do; once the first has stopped, a new one starts
// and holds the lock.
func TestSecondLearnerRefused(t *testing.T) {
	srv := listeningServer(t)
	cfg := learnerTestConfig(t, "locked", srv.URL())
	ctx := testCtx(t)
	js := pipetest.Connect(t, srv.URL())
	topo, _ := cfg.topology()

	stopFirst := startStage(t, ctx, cfg, pipeline.StageLearner)
	var first *pipeline.LockInfo
	pollCmd(t, ctx, "the first learner's lock", func() bool {
		first = lockHolder(t, ctx, js, topo)
		return first != nil
	})
	// The first learner is built once it has announced its initial
	// version; it then buffers a group (too few for an update).
	ws, err := pipeline.OpenWeightStore(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	pollCmd(t, ctx, "the first learner's initial version", func() bool {
		_, err := ws.Latest(ctx)
		return err == nil
	})
	publishLabeled(t, js, topo, learnerGroup(cfg.Run, 0, 2), "g0")

	host, _ := os.Hostname()
	second := cfg
	second.Dir = t.TempDir() // another machine's run directory: the lock still refuses it
	err = runStage(ctx, second, slog.New(slog.DiscardHandler), pipeline.StageLearner, "")
	if !errors.Is(err, pipeline.ErrLocked) {
		t.Fatalf("second learner: %v, want ErrLocked", err)
	}
	for _, want := range []string{
		"learner is already running for run locked",
		fmt.Sprintf("pid %d on host %q", os.Getpid(), host),
		first.Holder,
		"stop it, or wait 30s if it crashed",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("second learner's error %q does not say %q", err, want)
		}
	}
	if now := lockHolder(t, ctx, js, topo); now == nil || now.Holder != first.Holder {
		t.Fatalf("after the refusal the lock is %+v, want still %+v", now, first)
	}

	stopFirst() // fails the test if the learner's stop reported an error
	if now := lockHolder(t, ctx, js, topo); now != nil {
		t.Fatalf("a stopped learner left its lock: %+v", now)
	}
	stopThird := startStage(t, ctx, cfg, pipeline.StageLearner)
	pollCmd(t, ctx, "the new learner's lock", func() bool {
		now := lockHolder(t, ctx, js, topo)
		return now != nil && now.Holder != first.Holder
	})
	// It works: with the first one's group (handed back untrained when
	// the first stopped) and another, it makes its first update.
	publishLabeled(t, js, topo, learnerGroup(cfg.Run, 1, 2), "g1")
	st, err := pipeline.OpenRunState(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	pollCmd(t, ctx, "the new learner's first update", func() bool {
		b, _, err := st.Get(ctx, prompts.KeyLearnerStep)
		return err == nil && string(b) == "1"
	})
	stopThird()
}

// TestLearnerLockTTLConfig checks learner.lock_ttl: 30s by default, set by
// the configuration file, refused under 1s.
func TestLearnerLockTTLConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want time.Duration
	}{
		{"default", "", 30 * time.Second},
		{"file", "learner:\n  lock_ttl: 2s\n", 2 * time.Second},
		{"too short", "learner:\n  lock_ttl: 999ms\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.yaml != "" {
				args = []string{"--config", writeYAML(t, tc.yaml)}
			}
			cfg, err := loadWith(t, args)
			if tc.want == 0 {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "learner.lock_ttl") {
					t.Fatalf("err = %v, want ErrConfig about learner.lock_ttl", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Learner.LockTTL != tc.want {
				t.Fatalf("lock_ttl %s, want %s", cfg.Learner.LockTTL, tc.want)
			}
		})
	}
}
