package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/prompts"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/learner"
)

// stageProc is a stage process: the test binary re-executed to run one
// stage of the table with cfg (TestMain, stageProcess).
type stageProc struct {
	cmd    *exec.Cmd
	exited chan error
}

// startStageProc starts stage name of cfg.Run against cfg.NATS in its own
// process; cleanup kills it if it still runs.
func startStageProc(t *testing.T, cfg Config, name string) *stageProc {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envStageProc+"="+name, envStageProcURL+"="+cfg.NATS,
		envStageProcRun+"="+cfg.Run, envStageProcConfig+"="+string(js))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &stageProc{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// stop sends sig and returns how the process exited.
func (p *stageProc) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return <-p.exited
}

// learnerCheckpoint is what the test reads of the learner's newest
// checkpoint (stages/learner's learner.json).
type learnerCheckpoint struct {
	Step        int64            `json:"step"`
	Version     int64            `json:"version"`
	Skipped     int64            `json:"skipped"`
	RowsTrained int64            `json:"rows_trained"`
	Dropped     map[string]int64 `json:"dropped"`
	Consumed    []struct {
		ID   string `json:"id"`
		Step int64  `json:"step"`
	} `json:"consumed"`
}

// newestCheckpoint returns the name and state of the newest checkpoint in
// the learner directory dir.
func newestCheckpoint(t *testing.T, dir string) (string, learnerCheckpoint) {
	t.Helper()
	steps, err := filepath.Glob(filepath.Join(dir, "step-*"))
	if err != nil || len(steps) == 0 {
		t.Fatalf("no learner checkpoint in %s (%v)", dir, err)
	}
	slices.Sort(steps) // step-NNNNNNNNNNNN: the names sort by step
	b, err := os.ReadFile(filepath.Join(steps[len(steps)-1], "learner.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c learnerCheckpoint
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(steps[len(steps)-1]), c
}

// versionLog records, from the moment it subscribes, every announcement
// of the run's policy version and every weights object stored.
type versionLog struct {
	mu        sync.Mutex
	announced []int64
	stored    []string
}

func watchVersions(t *testing.T, nc *nats.Conn, topo pipeline.Topology) *versionLog {
	t.Helper()
	v := &versionLog{}
	kv, err := nc.Subscribe("$KV."+topo.StateBucket()+"."+pipeline.PolicyVersionKey, func(m *nats.Msg) {
		n, err := strconv.ParseInt(string(m.Data), 10, 64)
		if err != nil {
			t.Errorf("announced version %q: %v", m.Data, err)
		}
		v.mu.Lock()
		v.announced = append(v.announced, n)
		v.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := nc.Subscribe("$O."+topo.WeightsBucket()+".M.>", func(m *nats.Msg) {
		var info jetstream.ObjectInfo
		if err := json.Unmarshal(m.Data, &info); err != nil {
			t.Errorf("weights object meta: %v", err)
		}
		if !info.Deleted {
			v.mu.Lock()
			v.stored = append(v.stored, info.Name)
			v.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kv.Unsubscribe(); _ = obj.Unsubscribe() })
	return v
}

func (v *versionLog) get() ([]int64, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.announced), slices.Clone(v.stored)
}

// TestLearnerKilledResumes runs the learner as its own process, SIGKILLs
// it after an update that is not yet in a checkpoint, and starts a
// replacement process, which takes the stale run lock over, resumes from
// the checkpoint and trains the rest.
//
// Why the final checkpoint proves that no rollout was lost or trained
// twice: the learner's learner.json describes the lineage of updates that
// the final weights are made of (an update lost with the killed process is
// not in it: its rows are forgotten with it and come back unacknowledged).
// Every row here trains the first time the lineage sees it (complete
// groups, valid tokens, fresh versions, finite numbers; skipped updates are
// checked to be 0; only redelivered rows the lineage already trained are
// dropped, as duplicates), so each of the Step updates consumed exactly
// GroupsPerStep*G rows, and its
// dedup window (larger than the run) lists each consumed trajectory id
// once with the update that consumed it. With Step == groups/GroupsPerStep,
// RowsTrained == groups*G, and the window holding exactly the fed ids with
// GroupsPerStep*G per update, the Step*GroupsPerStep*G row trainings of the
// lineage cover every fed id, so each was trained exactly once: a lost row
// would leave the learner short of the last update (or the id missing), a
// row trained twice would need an update more than the rows allow.
func TestLearnerKilledResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	srv := listeningServer(t)
	cfg := learnerTestConfig(t, "lkill", srv.URL())
	cfg.Learner.CheckpointEvery = 2
	cfg.Learner.LockTTL = time.Second    // the replacement takes the lock over soon
	cfg.Runner.AckWait = 2 * time.Second // and gets the killed learner's batches back soon
	const groups, size = 10, 2           // 5 updates of 2 groups
	perStep := int64(cfg.Learner.GroupsPerStep) * size
	ctx := testCtx(t)
	js := pipetest.Connect(t, srv.URL())
	topo, _ := cfg.topology()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	versions := watchVersions(t, js.Conn(), topo)
	st, err := pipeline.OpenRunState(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	stepIs := func(want string) func() bool {
		return func() bool {
			b, _, err := st.Get(ctx, prompts.KeyLearnerStep)
			return err == nil && string(b) == want
		}
	}
	want := map[string]bool{}
	for g := range groups {
		for _, r := range learnerGroup(cfg.Run, g, size) {
			want[r.TrajectoryID] = true
		}
	}

	// Batches of 3 groups straddle the updates: the first learner trains
	// groups 0-1 (update 1), 2-3 (update 2, checkpointed: batch 0 is
	// acknowledged) and 4-5 (update 3, lost with it). Batch 1 is
	// redelivered: its group 3 must not train again, groups 4-5 must.
	feed := func(from, to int) {
		var rows []schemas.Labeled
		for g := from; g < to; g++ {
			rows = append(rows, learnerGroup(cfg.Run, g, size)...)
		}
		publishLabeled(t, js, topo, rows, fmt.Sprint("groups-", from))
	}
	first := startStageProc(t, cfg, "learner")
	feed(0, 3)
	feed(3, 6)
	pollCmd(t, ctx, "the first learner's third update", stepIs("3"))
	if err := first.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("the learner process exited cleanly; want killed")
	}
	learnerDir := filepath.Join(cfg.RunDir(), "learner")
	if name, c := newestCheckpoint(t, learnerDir); c.Step != 2 {
		t.Fatalf("after the kill the newest checkpoint is %s at step %d; want step 2 (update 3 lost with the process)", name, c.Step)
	}

	// The killed learner's lock is stale once it has not been refreshed for
	// its ttl; a learner started before would be refused (TestSecondLearnerRefused).
	kv, err := js.KeyValue(ctx, topo.StateBucket())
	if err != nil {
		t.Fatal(err)
	}
	pollCmd(t, ctx, "the killed learner's lock to go stale", func() bool {
		e, err := kv.Get(ctx, "lock."+pipeline.StageLearner)
		return errors.Is(err, jetstream.ErrKeyNotFound) || (err == nil && time.Since(e.Created()) > cfg.Learner.LockTTL)
	})
	second := startStageProc(t, cfg, "learner")
	feed(6, 9)
	feed(9, groups)
	pollCmd(t, ctx, "the replacement's last update", stepIs(fmt.Sprint(groups/cfg.Learner.GroupsPerStep)))
	if err := second.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("the replacement learner exited with %v", err)
	}

	name, c := newestCheckpoint(t, learnerDir)
	if c.Step != groups/int64(cfg.Learner.GroupsPerStep) || c.RowsTrained != groups*size || c.Skipped != 0 {
		t.Fatalf("final checkpoint %s: step %d, rows trained %d, skipped %d; want %d, %d, 0",
			name, c.Step, c.RowsTrained, c.Skipped, groups/cfg.Learner.GroupsPerStep, groups*size)
	}
	if c.Dropped[learner.DropDuplicate] < size {
		t.Errorf("the replacement dropped %d duplicates; want at least group 3's %d rows (redelivered with batch 1)", c.Dropped[learner.DropDuplicate], size)
	}
	got := map[string]bool{}
	perUpdate := map[int64]int64{}
	for _, e := range c.Consumed {
		if got[e.ID] {
			t.Errorf("trajectory %s listed twice in the dedup window", e.ID)
		}
		got[e.ID] = true
		perUpdate[e.Step]++
	}
	if !maps.Equal(got, want) {
		t.Errorf("the final lineage consumed %d trajectories, want the %d fed: %v", len(got), len(want), slices.Sorted(maps.Keys(got)))
	}
	for s := int64(1); s <= c.Step; s++ {
		if perUpdate[s] != perStep {
			t.Errorf("update %d consumed %d rows, want %d (per update: %v)", s, perUpdate[s], perStep, perUpdate)
		}
	}

	// Versions: each announcement newer than the last, no weights object
	// stored twice, the last one the final checkpoint's. The first learner
	// announced its start and 3 updates, the replacement its resumed
	// weights (under a new version: update 3's was taken) and 3 updates.
	ws, err := pipeline.OpenWeightStore(ctx, js, topo)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := ws.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	announced, stored := versions.get()
	increasing := len(announced) == 8
	for i := 1; increasing && i < len(announced); i++ {
		increasing = announced[i] > announced[i-1]
	}
	if !increasing || announced[len(announced)-1] != c.Version || latest != c.Version {
		t.Errorf("announced versions %v (latest %d); want 8 strictly increasing, ending at the final checkpoint's %d", announced, latest, c.Version)
	}
	if names := slices.Compact(slices.Sorted(slices.Values(stored))); len(names) != len(stored) || len(stored) != len(announced) {
		t.Errorf("weights objects stored %v; want each once, one per announced version %v", stored, announced)
	}
}
