package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/bench/logstore"
	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// dlqRun is one run's streams on a listening embedded NATS server.
type dlqRun struct {
	url  string
	js   jetstream.JetStream
	topo pipeline.Topology
}

// newDLQRun starts a listening server in a temporary directory and creates
// the streams of topo on it; the server stops at cleanup.
func newDLQRun(t *testing.T, topo pipeline.Topology) *dlqRun {
	t.Helper()
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir(), Listen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	r := &dlqRun{url: srv.URL(), js: pipetest.Connect(t, srv.URL()), topo: topo}
	if err := topo.Ensure(testCtx(t), r.js); err != nil {
		t.Fatal(err)
	}
	return r
}

// dlq runs `wsgrpo dlq args...` against the run's server.
func (r *dlqRun) dlq(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return execute(t, newDLQCmd(), append(args, "--nats", r.url, "--run", r.topo.Run)...)
}

// hop returns the run's hop of kind k.
func (r *dlqRun) hop(t *testing.T, k schemas.Kind) pipeline.Hop {
	t.Helper()
	h, err := r.topo.Hop(k)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// state returns the state of stream name.
func (r *dlqRun) state(t *testing.T, name string) jetstream.StreamState {
	t.Helper()
	s, err := r.js.Stream(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// dlqSeqs returns the sequences held by the dead-letter stream.
func (r *dlqRun) dlqSeqs(t *testing.T) []uint64 {
	t.Helper()
	s, err := r.js.Stream(testCtx(t), r.topo.DeadLetterStream())
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	if err := pipeline.ScanDeadLetters(testCtx(t), s, func(e pipeline.DeadLetterEntry) error {
		seqs = append(seqs, e.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// waitDLQ polls until the dead-letter stream holds n messages.
func (r *dlqRun) waitDLQ(t *testing.T, n uint64) {
	t.Helper()
	pollCmd(t, testCtx(t), fmt.Sprintf("%d dead letters", n), func() bool {
		return r.state(t, r.topo.DeadLetterStream()).Msgs == n
	})
}

// addDeadLetter stores d in the run's dead-letter stream as a runner would.
func (r *dlqRun) addDeadLetter(t *testing.T, d pipeline.DeadLetter) {
	t.Helper()
	if d.Time.IsZero() {
		d.Time = time.Now()
	}
	if _, err := r.js.PublishMsg(testCtx(t), d.Msg(r.topo.DeadLetterSubject(d.Stage))); err != nil {
		t.Fatal(err)
	}
}

// runProc runs a stage runner of rc with proc in the background; the
// returned function (also run at cleanup) stops it.
func runProc(t *testing.T, js jetstream.JetStream, rc pipeline.RunnerConfig, proc stage.Func) func() {
	t.Helper()
	rc.FetchWait, rc.ShutdownGrace = 100*time.Millisecond, time.Second
	runner, err := pipeline.NewRunner(js, rc, proc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runner %s: %v", rc.Stage, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// dlqPrompts is a prompt batch of n rows with ids p<batch>-<i>.
func dlqPrompts(run string, batch, n int) arrow.RecordBatch {
	ps := make([]schemas.Prompt, n)
	for i := range ps {
		ps[i] = schemas.Prompt{RunID: run, Step: int64(batch), PromptID: fmt.Sprintf("p%d-%d", batch, i), Task: "add", Prompt: "1+1=", ReferenceAnswer: "2"}
	}
	return schemas.NewPromptBatch(nil, ps)
}

// encoded returns rec's payload and releases rec.
func encoded(t *testing.T, rec arrow.RecordBatch) []byte {
	t.Helper()
	defer rec.Release()
	b, err := schemas.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishRec publishes rec to subject under id and releases it.
func publishRec(t *testing.T, js jetstream.JetStream, subject string, rec arrow.RecordBatch, id string) {
	t.Helper()
	defer rec.Release()
	if _, err := pipeline.PublishBatch(testCtx(t), js, subject, rec, id, 0); err != nil {
		t.Fatal(err)
	}
}

// longCause is the error the failing sampler reports: longer than the
// table's error column.
var longCause = "tokenizer exploded: " + strings.Repeat("vocabulary mismatch ", 8) + "END"

// TestDLQ produces real dead letters with stage runners (an invalid
// payload and a permanent error on the sampler's work queue, a permanent
// error of the learner on the labeled stream, which the logger also reads)
// plus one malformed entry, then lists and redrives them.
func TestDLQ(t *testing.T) {
	topo, _ := pipeline.NewTopology("dlq")
	r := newDLQRun(t, topo)
	ctx := testCtx(t)
	prompts, labeled := r.hop(t, schemas.KindPrompt), r.hop(t, schemas.KindLabeled)
	dlqStream := topo.DeadLetterStream()

	sampler, err := topo.RunnerConfig(pipeline.StageSampler)
	if err != nil {
		t.Fatal(err)
	}
	stopSampler := runProc(t, r.js, sampler, func(context.Context, arrow.RecordBatch) ([]arrow.RecordBatch, error) {
		return nil, fmt.Errorf("%w: %s", stage.ErrPermanent, longCause)
	})
	if _, err := r.js.Publish(ctx, prompts.Subject, []byte("not arrow")); err != nil {
		t.Fatal(err)
	}
	r.waitDLQ(t, 1) // seq 1: invalid-payload
	publishRec(t, r.js, prompts.Subject, dlqPrompts(topo.Run, 0, 3), "batch-0")
	r.waitDLQ(t, 2) // seq 2: permanent-error
	stopSampler()

	learner, err := topo.RunnerConfig(pipeline.StageLearner)
	if err != nil {
		t.Fatal(err)
	}
	stopLearner := runProc(t, r.js, learner, func(context.Context, arrow.RecordBatch) ([]arrow.RecordBatch, error) {
		return nil, fmt.Errorf("%w: optimizer diverged", stage.ErrPermanent)
	})
	ls := make([]schemas.Labeled, 4)
	for i, row := range logstore.SyntheticRows(topo.Run, len(ls), 8, 1) {
		ls[i] = row.LabeledRow()
	}
	publishRec(t, r.js, labeled.Subject, schemas.NewLabeledBatch(nil, ls), "labeled-0")
	r.waitDLQ(t, 3) // seq 3: the learner's permanent-error
	stopLearner()

	if _, err := r.js.Publish(ctx, topo.DeadLetterSubject(pipeline.StageSampler), []byte("junk")); err != nil {
		t.Fatal(err)
	}
	r.waitDLQ(t, 4) // seq 4: malformed

	t.Run("list table", func(t *testing.T) {
		got, err := r.dlq(t, "list")
		if err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		lines := strings.Split(strings.TrimSpace(got), "\n")
		if len(lines) != 6 {
			t.Fatalf("want a header, 4 lines and a summary:\n%s", got)
		}
		for i, want := range [][]string{
			{"SEQ", "TIME", "STAGE", "REASON", "CLASS", "DELIVERIES", "SOURCE", "BYTES", "ERROR"},
			{"1 ", "sampler", "invalid-payload", " invalid ", prompts.Stream + ":1", " 9 ", "malformed Arrow IPC"},
			{"2 ", "sampler", "permanent-error", " permanent ", prompts.Stream + ":2", "tokenizer exploded", "…"},
			{"3 ", "learner", "permanent-error", " permanent ", labeled.Stream + ":1", "optimizer diverged"},
			{"4 ", "malformed", " 4 ", "malformed dead-letter record"},
			{"4 dead letters in run \"dlq\"", "1 malformed"},
		} {
			for _, w := range want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d lacks %q: %s", i, w, lines[i])
				}
			}
		}
		if strings.Contains(got, "END") {
			t.Errorf("table holds the whole long error:\n%s", got)
		}
	})

	t.Run("list json", func(t *testing.T) {
		got, err := r.dlq(t, "list", "--format", "json")
		if err != nil {
			t.Fatal(err)
		}
		var ls []dlqLine
		for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
			var l dlqLine
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			ls = append(ls, l)
		}
		if len(ls) != 4 {
			t.Fatalf("%d lines, want 4:\n%s", len(ls), got)
		}
		want := []dlqLine{
			{Seq: 1, Stage: "sampler", Reason: "invalid-payload", Class: "invalid", Deliveries: 1, Stream: prompts.Stream, Sequence: 1, Subject: prompts.Subject, Consumer: "sampler", PayloadBytes: 9},
			{Seq: 2, Stage: "sampler", Reason: "permanent-error", Class: "permanent", Deliveries: 1, Stream: prompts.Stream, Sequence: 2, Subject: prompts.Subject, Consumer: "sampler"},
			{Seq: 3, Stage: "learner", Reason: "permanent-error", Class: "permanent", Deliveries: 1, Stream: labeled.Stream, Sequence: 1, Subject: labeled.Subject, Consumer: "learner"},
			{Seq: 4, Reason: "malformed", PayloadBytes: 4},
		}
		for i, w := range want {
			g := ls[i]
			if g.Time.IsZero() || g.Error == "" {
				t.Errorf("line %d has no time or error: %+v", i, g)
			}
			if w.PayloadBytes == 0 {
				w.PayloadBytes = g.PayloadBytes
			}
			g.Time, g.Error = time.Time{}, ""
			if g != w {
				t.Errorf("line %d = %+v, want %+v", i, g, w)
			}
		}
		if !strings.HasSuffix(ls[1].Error, longCause) {
			t.Errorf("json error %q is not the whole cause", ls[1].Error)
		}
	})

	t.Run("list filters", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			seqs []uint64
		}{
			{[]string{"--stage", "learner"}, []uint64{3}},
			{[]string{"--reason", "permanent-error"}, []uint64{2, 3}},
			{[]string{"--stage", "sampler", "--reason", "invalid-payload"}, []uint64{1}},
			{[]string{"--reason", "malformed"}, []uint64{4}},
			{[]string{"--reason", "max-deliveries"}, nil},
		} {
			t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
				got, err := r.dlq(t, append([]string{"list", "--format", "json"}, tc.args...)...)
				if err != nil {
					t.Fatal(err)
				}
				var seqs []uint64
				dec := json.NewDecoder(strings.NewReader(got))
				for dec.More() {
					var l dlqLine
					if err := dec.Decode(&l); err != nil {
						t.Fatal(err)
					}
					seqs = append(seqs, l.Seq)
				}
				if !slices.Equal(seqs, tc.seqs) {
					t.Fatalf("seqs = %v, want %v", seqs, tc.seqs)
				}
			})
		}
	})

	// Refusals change nothing.
	promptsBefore, labeledBefore := r.state(t, prompts.Stream), r.state(t, labeled.Stream)
	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			want []error
			says []string
		}{
			{"no selection", nil, []error{ErrConfig}, []string{"--seq N", "--all"}},
			{"seq and all", []string{"--seq", "2", "--all"}, []error{ErrConfig}, []string{"not both"}},
			{"seq 0", []string{"--seq", "0"}, []error{ErrConfig}, []string{"start at 1"}},
			{"bad reason", []string{"--all", "--reason", "whim"}, []error{ErrConfig}, []string{"invalid-payload"}},
			{"missing", []string{"--seq", "99"}, []error{ErrDLQEntryNotFound}, []string{"99", dlqStream}},
			{"invalid payload", []string{"--seq", "1"}, []error{pipeline.ErrRedriveRefused, pipeline.ErrRedriveCannotSucceed},
				[]string{"nothing was redriven", "does not decode as a prompt batch", "--force"}},
			{"invalid payload, dry run", []string{"--seq", "1", "--dry-run"}, []error{pipeline.ErrRedriveCannotSucceed}, []string{"does not decode"}},
			{"interest stream", []string{"--seq", "3"}, []error{pipeline.ErrRedriveRefused, pipeline.ErrRedriveSharedStream},
				[]string{labeled.Stream, "interest retention", "(learner, logger)", "again to logger", "--force"}},
			{"all", []string{"--all"}, []error{pipeline.ErrRedriveCannotSucceed, pipeline.ErrRedriveSharedStream}, []string{"2 of 3 selected"}},
			{"all, one refused", []string{"--seq", "2", "--seq", "3"}, []error{pipeline.ErrRedriveSharedStream}, []string{"1 of 2 selected"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := r.dlq(t, append([]string{"redrive"}, tc.args...)...)
				for _, want := range tc.want {
					if !errors.Is(err, want) {
						t.Fatalf("err = %v, want %v\n%s", err, want, got)
					}
				}
				for _, s := range tc.says {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error lacks %q: %v", s, err)
					}
				}
			})
		}
		if seqs := r.dlqSeqs(t); !slices.Equal(seqs, []uint64{1, 2, 3, 4}) {
			t.Fatalf("dead letters after refusals: %v", seqs)
		}
		if st := r.state(t, prompts.Stream); st.LastSeq != promptsBefore.LastSeq {
			t.Fatalf("refusals published to %s: last seq %d -> %d", prompts.Stream, promptsBefore.LastSeq, st.LastSeq)
		}
		if st := r.state(t, labeled.Stream); st.LastSeq != labeledBefore.LastSeq {
			t.Fatalf("refusals published to %s", labeled.Stream)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		got, err := r.dlq(t, "redrive", "--all", "--stage", "sampler", "--reason", "permanent-error", "--dry-run")
		if err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		for _, want := range []string{"would redrive dead letter 2 (sampler, permanent-error, 3 rows) to " + prompts.Subject, "nothing was changed"} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%s", want, got)
			}
		}
		if seqs := r.dlqSeqs(t); !slices.Equal(seqs, []uint64{1, 2, 3, 4}) {
			t.Fatalf("dead letters after a dry run: %v", seqs)
		}
		if st := r.state(t, prompts.Stream); st.LastSeq != promptsBefore.LastSeq {
			t.Fatalf("dry run published to %s", prompts.Stream)
		}
	})

	t.Run("redrive permanent error", func(t *testing.T) {
		got, err := r.dlq(t, "redrive", "--seq", "2")
		if err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		if !strings.Contains(got, "redriven dead letter 2 (sampler, permanent-error, 3 rows) to "+prompts.Subject) || !strings.Contains(got, "redrove 1 dead letters") {
			t.Fatalf("output:\n%s", got)
		}
		if seqs := r.dlqSeqs(t); !slices.Equal(seqs, []uint64{1, 3, 4}) {
			t.Fatalf("dead letters after the redrive: %v", seqs)
		}
		// The sampler, working now, gets the batch again.
		var mu sync.Mutex
		var ids []string
		stop := runProc(t, r.js, sampler, func(_ context.Context, rec arrow.RecordBatch) ([]arrow.RecordBatch, error) {
			ps, err := schemas.ReadPrompts(rec)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps {
				ids = append(ids, p.PromptID)
			}
			return nil, nil
		})
		pollCmd(t, ctx, "the sampler to receive the redriven batch", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(ids) == 3
		})
		stop()
		if !slices.Equal(ids, []string{"p0-0", "p0-1", "p0-2"}) {
			t.Fatalf("sampler got %v", ids)
		}

		// Again: the entry is gone and nothing is published twice.
		last := r.state(t, prompts.Stream).LastSeq
		if _, err := r.dlq(t, "redrive", "--seq", "2"); !errors.Is(err, ErrDLQEntryNotFound) {
			t.Fatalf("second redrive: err = %v, want ErrDLQEntryNotFound", err)
		}
		if st := r.state(t, prompts.Stream); st.LastSeq != last {
			t.Fatalf("second redrive published again: last seq %d -> %d", last, st.LastSeq)
		}
	})

	t.Run("force", func(t *testing.T) {
		before := r.state(t, labeled.Stream)
		got, err := r.dlq(t, "redrive", "--all", "--force")
		if err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		for _, want := range []string{
			"warning: --force: redriving anyway", "does not decode", "again to logger",
			"warning: skipping dead letter 4: malformed dead-letter record",
			"redriven dead letter 1 (sampler, invalid-payload", "redriven dead letter 3 (learner, permanent-error, 4 rows)",
			"redrove 2 dead letters",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%s", want, got)
			}
		}
		if seqs := r.dlqSeqs(t); !slices.Equal(seqs, []uint64{4}) {
			t.Fatalf("dead letters after --all --force: %v, want the malformed one", seqs)
		}
		// Both consumers of the labeled stream get the copy: the learner
		// has it pending, the logger the original and the copy.
		if st := r.state(t, labeled.Stream); st.LastSeq != before.LastSeq+1 {
			t.Fatalf("labeled stream last seq %d -> %d, want one more", before.LastSeq, st.LastSeq)
		}
		// The server updates a consumer's pending count after the publish
		// returns: poll for it.
		for name, want := range map[string]uint64{pipeline.StageLearner: 1, pipeline.StageLogger: 2} {
			c, err := r.js.Consumer(ctx, labeled.Stream, name)
			if err != nil {
				t.Fatal(err)
			}
			var pending uint64
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ok := waitUntil(wctx, func() bool {
				info, err := c.Info(wctx)
				if err != nil {
					return false
				}
				pending = info.NumPending
				return pending == want
			})
			cancel()
			if !ok {
				t.Errorf("consumer %s has %d pending, want %d", name, pending, want)
			}
		}
	})
}

// TestDLQRedriveChecks covers refusals of crafted dead letters, and a
// redrive from a stream with interest retention and a single consumer.
func TestDLQRedriveChecks(t *testing.T) {
	topo, _ := pipeline.NewTopology("checks")
	r := newDLQRun(t, topo)
	prompts, labeled := r.hop(t, schemas.KindPrompt), r.hop(t, schemas.KindLabeled)
	payload := encoded(t, dlqPrompts(topo.Run, 1, 2))
	letter := func(reason pipeline.Reason, errText string) pipeline.DeadLetter {
		return pipeline.DeadLetter{Reason: reason, Error: errText, Stage: pipeline.StageSampler, Stream: prompts.Stream,
			Subject: prompts.Subject, Consumer: pipeline.StageSampler, Sequence: 1, Deliveries: 1, Payload: payload}
	}
	foreign := letter(pipeline.ReasonMaxDeliveries, "x")
	foreign.Stream, foreign.Subject = "WSGRPO_other_PROMPT", "wsgrpo.other.prompt"
	ghost := letter(pipeline.ReasonPermanentError, "x")
	ghost.Stage, ghost.Consumer, ghost.Stream, ghost.Subject = "ghost", "ghost", labeled.Stream, labeled.Subject
	// The redrive rules read the class the runner recorded, not the text.
	rejected := letter(pipeline.ReasonPermanentError, "reward model: NaN score")
	rejected.Class = stage.ClassInvalid
	tooLarge := letter(pipeline.ReasonPermanentError, "output 0: one row encodes to 9 MB")
	tooLarge.Class = pipeline.ClassTooLarge
	// Text that reads like a refusal, on a class that allows a redrive.
	lookalike := letter(pipeline.ReasonMaxDeliveries, "failed on delivery 5 of 5: "+schemas.ErrInvalid.Error()+" upstream")
	lookalike.Class = stage.ClassTransient
	for i, d := range []pipeline.DeadLetter{foreign, ghost, rejected, tooLarge, lookalike} {
		d.Sequence = uint64(i + 1)
		r.addDeadLetter(t, d)
	}
	for _, tc := range []struct {
		name  string
		seq   string
		force bool
		want  error
		says  string
	}{
		{"foreign stream", "1", false, pipeline.ErrRedriveOrigin, "not a data stream of run checks"},
		{"foreign stream, forced", "1", true, pipeline.ErrRedriveOrigin, "--force does not help"},
		{"consumer gone", "2", false, pipeline.ErrRedriveNoConsumer, `consumer "ghost" no longer exists`},
		{"rows rejected as invalid", "3", false, pipeline.ErrRedriveCannotSucceed, "rejected its rows as invalid"},
		{"output too large", "4", false, pipeline.ErrRedriveCannotSucceed, "could not be published at any size"},
		{"transient class, invalid-looking text", "5", false, nil, "redrove 1 dead letters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"redrive", "--seq", tc.seq}
			if tc.force {
				args = append(args, "--force")
			}
			got, err := r.dlq(t, args...)
			if tc.want == nil {
				if err != nil || !strings.Contains(got, tc.says) {
					t.Fatalf("err = %v, want a redrive saying %q\n%s", err, tc.says, got)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, pipeline.ErrRedriveRefused) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q\n%s", err, tc.want, tc.says, got)
			}
		})
	}
	if st := r.state(t, prompts.Stream); st.Msgs != 1 {
		t.Fatalf("the prompt stream holds %d messages, want the one redriven (refusals publish nothing)", st.Msgs)
	}

	// Without a labeler, the verified stream has interest retention; with
	// the logger its only consumer, a logger dead letter goes back to the
	// logger alone, so no --force is needed. With a second sink it is.
	for _, tc := range []struct {
		name      string
		consumers []string
		want      error
	}{
		{"logger alone", nil, nil},
		{"logger and tally", []string{pipeline.StageLogger, "tally"}, pipeline.ErrRedriveSharedStream},
	} {
		t.Run("no labeler, "+tc.name, func(t *testing.T) {
			nt := pipeline.Topology{Run: "eval", NoLabeler: true, VerifiedConsumers: tc.consumers}
			nr := newDLQRun(t, nt)
			ver := nr.hop(t, schemas.KindVerified)
			vs := make([]schemas.Verified, 2)
			for i, row := range logstore.SyntheticRows(nt.Run, len(vs), 8, 2) {
				vs[i] = row.LabeledRow().Verified
			}
			nr.addDeadLetter(t, pipeline.DeadLetter{Reason: pipeline.ReasonMaxDeliveries, Error: "failed on delivery 5 of 5",
				Stage: pipeline.StageLogger, Stream: ver.Stream, Subject: ver.Subject, Consumer: pipeline.StageLogger,
				Sequence: 1, Deliveries: 5, Payload: encoded(t, schemas.NewVerifiedBatch(nil, vs))})
			got, err := nr.dlq(t, "redrive", "--seq", "1")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v\n%s", err, tc.want, got)
			}
			if tc.want == nil && nr.state(t, ver.Stream).Msgs != 1 {
				t.Fatalf("verified stream does not hold the redriven batch:\n%s", got)
			}
			if tc.want != nil && !strings.Contains(err.Error(), "again to tally") {
				t.Fatalf("error does not name the other consumer: %v", err)
			}
		})
	}
}

// TestDLQRedriveRetry: when the removal from the dead-letter stream fails
// after the publish, the entry stays, and redriving it again publishes
// nothing new (the message id derives from the dead-letter sequence).
func TestDLQRedriveRetry(t *testing.T) {
	topo, _ := pipeline.NewTopology("retry")
	r := newDLQRun(t, topo)
	ctx := testCtx(t)
	prompts := r.hop(t, schemas.KindPrompt)
	r.addDeadLetter(t, pipeline.DeadLetter{Reason: pipeline.ReasonMaxDeliveries, Error: "failed on delivery 5 of 5",
		Stage: pipeline.StageSampler, Stream: prompts.Stream, Subject: prompts.Subject, Consumer: pipeline.StageSampler,
		Sequence: 7, Deliveries: 5, Payload: encoded(t, dlqPrompts(topo.Run, 2, 2))})
	// The server refuses to delete from the dead-letter stream from now on.
	dlq, err := r.js.Stream(ctx, topo.DeadLetterStream())
	if err != nil {
		t.Fatal(err)
	}
	cfg := dlq.CachedInfo().Config
	cfg.DenyDelete = true
	if _, err := r.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		got, err := r.dlq(t, "redrive", "--seq", "1")
		if !errors.Is(err, pipeline.ErrRedriveIncomplete) || !strings.Contains(err.Error(), "could not be removed") ||
			!strings.Contains(err.Error(), "run the same command again") {
			t.Fatalf("attempt %d: err = %v, want pipeline.ErrRedriveIncomplete\n%s", attempt, err, got)
		}
		if seqs := r.dlqSeqs(t); !slices.Equal(seqs, []uint64{1}) {
			t.Fatalf("attempt %d: dead letters %v, want [1] kept", attempt, seqs)
		}
		if st := r.state(t, prompts.Stream); st.Msgs != 1 || st.LastSeq != 1 {
			t.Fatalf("attempt %d: prompt stream holds %d messages (last seq %d), want the one copy", attempt, st.Msgs, st.LastSeq)
		}
	}
	m, err := r.js.Stream(ctx, prompts.Stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if id := raw.Header.Get(jetstream.MsgIDHeader); id != "redrive:"+topo.DeadLetterStream()+":1" {
		t.Fatalf("message id %q", id)
	}
	if src := raw.Header.Get(pipeline.HeaderSource); src != prompts.Stream+":7" {
		t.Fatalf("source header %q", src)
	}
}

// TestDLQEmbeddedRun lists and redrives the dead letters of a run directory
// through its embedded NATS store, as after a run has stopped.
func TestDLQEmbeddedRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "emb")
	srv, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := pipeline.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo, _ := pipeline.NewTopology("emb")
	if err := topo.Ensure(testCtx(t), js); err != nil {
		t.Fatal(err)
	}
	rollouts, _ := topo.Hop(schemas.KindRollout)
	d := pipeline.DeadLetter{Reason: pipeline.ReasonMaxDeliveries, Error: "verifier timed out", Stage: pipeline.StageVerifier,
		Stream: rollouts.Stream, Subject: rollouts.Subject, Consumer: pipeline.StageVerifier, Sequence: 3, Deliveries: 5,
		Time: time.Now(), Payload: []byte("x")}
	if _, err := js.PublishMsg(testCtx(t), d.Msg(topo.DeadLetterSubject(d.Stage))); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()
	markedRunDir(t, dir)

	got, err := execute(t, newDLQCmd(), "list", "--run", dir)
	if err != nil || !strings.Contains(got, "verifier") || !strings.Contains(got, rollouts.Stream+":3") || !strings.Contains(got, "verifier timed out") {
		t.Fatalf("list --run DIR = %v\n%s", err, got)
	}
	// The payload is not a rollout batch: refused, and forced through.
	if _, err := execute(t, newDLQCmd(), "redrive", "--run", dir, "--seq", "1"); !errors.Is(err, pipeline.ErrRedriveCannotSucceed) {
		t.Fatalf("redrive of an undecodable payload: err = %v", err)
	}
	if got, err := execute(t, newDLQCmd(), "redrive", "--run", dir, "--seq", "1", "--force"); err != nil {
		t.Fatalf("redrive --force: %v\n%s", err, got)
	}
	got, err = execute(t, newDLQCmd(), "list", "--run", dir)
	if err != nil || !strings.Contains(got, `no dead letters in run "emb"`) {
		t.Fatalf("list after redrive = %v\n%s", err, got)
	}
}

// TestDLQErrors: commands that cannot find a dead-letter stream, or are
// given bad flags, say what to do and open nothing.
func TestDLQErrors(t *testing.T) {
	topo, _ := pipeline.NewTopology("present")
	r := newDLQRun(t, topo)
	missing := filepath.Join(t.TempDir(), "never-ran")
	for _, tc := range []struct {
		name string
		args []string
		want error
		says string
	}{
		{"no run directory", []string{"list", "--run", "never-ran", "--dir", missing}, ErrNoDLQ, "no embedded NATS store"},
		{"no such run on the server", []string{"list", "--run", "absent", "--nats", r.url}, ErrNoDLQ, "WSGRPO_absent_DLQ"},
		{"bad format", []string{"list", "--run", "present", "--nats", r.url, "--format", "csv"}, ErrConfig, "table or json"},
		{"bad stage", []string{"list", "--run", "present", "--nats", r.url, "--stage", "a.b"}, ErrConfig, "--stage"},
		{"redrive on no run", []string{"redrive", "--all", "--run", "absent", "--nats", r.url}, ErrNoDLQ, "is --run right?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := execute(t, newDLQCmd(), tc.args...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %v saying %q\n%s", err, tc.want, tc.says, got)
			}
		})
	}
	if got, err := execute(t, newDLQCmd(), "list", "--run", "present", "--nats", r.url); err != nil || !strings.Contains(got, `no dead letters in run "present"`) {
		t.Fatalf("empty list = %v\n%s", err, got)
	}
}
