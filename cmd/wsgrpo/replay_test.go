package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/replay"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// replayRunDir creates root/<run> with an embedded trajectory log holding
// n synthetic rows of run (steps of 64), and returns the run directory.
func replayRunDir(t *testing.T, root, run string, n int) string {
	t.Helper()
	lib := chtest.Library(t)
	dir := markedRunDir(t, filepath.Join(root, run))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := tracelog.Open(ctx, tracelog.Config{Dir: tracelog.EmbeddedDir(dir), Lib: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, logstore.SyntheticRows(run, n, 4, 5)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runReplayCmd runs `wsgrpo replay args...` and returns its standard output.
func runReplayCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := newReplayCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(append(args, "--log-level", "error"))
	err := cmd.ExecuteContext(ctx)
	return stdout.String(), err
}

// replayStreamRows opens the embedded NATS store of runDir after the
// command has stopped its server, and returns the rows of the hop of kind
// with their replayed flags, and the stream's message count.
func replayStreamRows(t *testing.T, runDir, run string, kind schemas.Kind) (ids []string, replayed int, msgs uint64) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: filepath.Join(runDir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := pipeline.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := pipeline.NewTopology(run)
	if err != nil {
		t.Fatal(err)
	}
	hop, err := topo.Hop(kind)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := js.Stream(ctx, hop.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		rec, err := schemas.Decode(kind, m.Data, mem)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := schemas.ReadPrompts(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := schemas.RowIDs(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Replayed && p.RunID == run {
				replayed++
			}
		}
		ids = append(ids, got...)
	}
	return ids, replayed, info.State.Msgs
}

func TestReplayCommand(t *testing.T) {
	root := t.TempDir()
	src := replayRunDir(t, root, "src", 256)

	stdout, err := runReplayCmd(t, "--run", src, "--to", "labeler", "--into", "dst", "--steps", "1..2", "--where", "sample_index < 4", "--batch", "16")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`replayed 64 rows of run "src" into run "dst" as verified batches for the labeler`, "subject wsgrpo.dst.verified", "batches:    4 "} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("output lacks %q:\n%s", want, stdout)
		}
	}
	dst := filepath.Join(root, "dst")
	ids, replayed, msgs := replayStreamRows(t, dst, "dst", schemas.KindVerified)
	if len(ids) != 64 || replayed != 64 || msgs != 4 {
		t.Fatalf("stream holds %d rows (%d marked replayed into dst) in %d messages, want 64 in 4", len(ids), replayed, msgs)
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "src/1/") && !strings.HasPrefix(id, "src/2/") {
			t.Fatalf("row %s is outside --steps 1..2", id)
		}
	}

	// The same replay again publishes nothing new.
	if _, err := runReplayCmd(t, "--run", src, "--to", "labeler", "--into", "dst", "--steps", "1..2", "--where", "sample_index < 4", "--batch", "16"); err != nil {
		t.Fatal(err)
	}
	if ids, _, msgs := replayStreamRows(t, dst, "dst", schemas.KindVerified); len(ids) != 64 || msgs != 4 {
		t.Fatalf("after a second replay the stream holds %d rows in %d messages, want 64 in 4", len(ids), msgs)
	}

	// Prompts for the sampler, from the run's own log into its own streams.
	stdout, err = runReplayCmd(t, "--run", src, "--to", "sampler")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "replayed 8 distinct prompts") {
		t.Fatalf("sampler replay output:\n%s", stdout)
	}
	if ids, replayed, _ := replayStreamRows(t, src, "src", schemas.KindPrompt); len(ids) != 8 || replayed != 8 {
		t.Fatalf("prompt stream holds %d prompts (%d replayed), want 8", len(ids), replayed)
	}
}

func TestReplayCommandErrors(t *testing.T) {
	root := t.TempDir()
	src := replayRunDir(t, root, "src", 64)
	tests := []struct {
		name string
		args []string
		want error
		says string
	}{
		{"no target", []string{"--run", src}, ErrConfig, "--to is required"},
		{"unknown target", []string{"--run", src, "--to", "logger"}, replay.ErrTarget, "sampler, verifier, labeler, learner"},
		{"bad steps", []string{"--run", src, "--to", "verifier", "--steps", "5..1"}, replay.ErrSteps, "after"},
		{"injection", []string{"--run", src, "--to", "verifier", "--where", "1) OR (1"}, replay.ErrWhere, "unbalanced"},
		{"subquery", []string{"--run", src, "--to", "verifier", "--where", "step IN (SELECT 1)"}, replay.ErrWhere, "SELECT"},
		{"bad into", []string{"--run", src, "--to", "verifier", "--into", "a/b"}, ErrConfig, "--into"},
		{"missing source", []string{"--run", src, "--to", "verifier", "--from", filepath.Join(root, "nope.parquet")}, replay.ErrSource, "nope.parquet"},
		{"run without a log", []string{"--run", "ghost", "--dir", filepath.Join(root, "ghost"), "--to", "verifier"}, replay.ErrSource, "no embedded trajectory log"},
		{"empty selection", []string{"--run", src, "--to", "verifier", "--steps", "100.."}, replay.ErrEmpty, `none of the 64 trajectories of run "src"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runReplayCmd(t, tc.args...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}
