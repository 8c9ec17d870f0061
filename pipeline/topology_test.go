package pipeline

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"run-1", true}, {"A_b-9", true}, {strings.Repeat("x", 64), true},
		{"", false}, {strings.Repeat("x", 65), false}, {"a.b", false}, {"a*", false},
		{"a>", false}, {"a b", false}, {"ü", false}, {"a/b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateName(tc.name)
			if tc.ok != (err == nil) {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidName) {
				t.Fatalf("error %v does not match ErrInvalidName", err)
			}
		})
	}
}

func TestTopologyNames(t *testing.T) {
	top, err := NewTopology("r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind      schemas.Kind
		stream    string
		subject   string
		retention jetstream.RetentionPolicy
	}{
		{schemas.KindPrompt, "WSGRPO_r1_PROMPT", "wsgrpo.r1.prompt", jetstream.WorkQueuePolicy},
		{schemas.KindRollout, "WSGRPO_r1_ROLLOUT", "wsgrpo.r1.rollout", jetstream.WorkQueuePolicy},
		{schemas.KindVerified, "WSGRPO_r1_VERIFIED", "wsgrpo.r1.verified", jetstream.WorkQueuePolicy},
		{schemas.KindLabeled, "WSGRPO_r1_LABELED", "wsgrpo.r1.labeled", jetstream.InterestPolicy},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			h, err := top.Hop(tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if h.Stream != tc.stream || h.Subject != tc.subject || h.Retention != tc.retention {
				t.Fatalf("hop %+v", h)
			}
		})
	}
	if _, err := top.Hop("bogus"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Hop(bogus) = %v", err)
	}
	if _, err := NewTopology("bad.run"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("NewTopology(bad.run) = %v", err)
	}
	for _, st := range []string{StageSampler, StageVerifier, StageLabeler, StageLearner, StageLogger} {
		s, err := top.Stage(st)
		if err != nil {
			t.Fatal(err)
		}
		sink := st == StageLearner || st == StageLogger
		if sink != (s.Output == nil) {
			t.Errorf("stage %s output %+v", st, s.Output)
		}
	}
}

// TestEnsureIdempotent creates the topology twice (the second call must
// change nothing and succeed) and checks the stream settings and that the
// learner and logger each get every labeled message.
func TestEnsureIdempotent(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	ctx := context.Background()
	top := ensureRun(t, js, "idem", jetstream.FileStorage)
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	want, err := top.MaxBodySize(js)
	if err != nil {
		t.Fatal(err)
	}
	if want != DefaultMaxPayload-HeaderReserve {
		t.Errorf("max body %d, want %d", want, DefaultMaxPayload-HeaderReserve)
	}
	for _, h := range top.Hops() {
		s, err := js.Stream(ctx, h.Stream)
		if err != nil {
			t.Fatal(err)
		}
		c := s.CachedInfo().Config
		if c.MaxMsgSize != int32(want) || c.Retention != h.Retention || len(c.Subjects) != 1 || c.Subjects[0] != h.Subject {
			t.Errorf("stream %s config %+v", h.Stream, c)
		}
	}
	if _, err := js.ObjectStore(ctx, top.WeightsBucket()); err != nil {
		t.Errorf("weights bucket: %v", err)
	}
	if _, err := js.KeyValue(ctx, top.StateBucket()); err != nil {
		t.Errorf("state bucket: %v", err)
	}
	// Interest retention: both sinks see the same message, even one
	// published before either sink ran (Ensure made their consumers).
	lab := mustHop(t, top, schemas.KindLabeled)
	if _, err := js.Publish(ctx, lab.Subject, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var cons []jetstream.Consumer
	for _, name := range []string{StageLearner, StageLogger} {
		c, err := js.Consumer(ctx, lab.Stream, name)
		if err != nil {
			t.Fatalf("consumer %s not created by Ensure: %v", name, err)
		}
		cons = append(cons, c)
	}
	for i, c := range cons {
		// Fetch waits for the message: FetchNoWait could ask before the
		// consumer has it (seen under the race detector).
		b, err := c.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n != 1 {
			t.Errorf("consumer %d got %d messages, want 1", i, n)
		}
	}
	if err := top.Delete(ctx, js); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := js.Stream(ctx, lab.Stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream after Delete: %v", err)
	}
}

func TestEnsureRejectsOversizedMaxMsgSize(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	top, err := NewTopology("big")
	if err != nil {
		t.Fatal(err)
	}
	top.MaxMsgSize = DefaultMaxPayload
	if err := top.Ensure(context.Background(), js); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Ensure = %v, want ErrInvalidConfig", err)
	}
}

// TestTopologyNoLabeler checks the wiring of a run without a labeler: the
// verified stream is the end of the line with interest retention, the
// logger reads it, and what only a labeler provides is refused.
func TestTopologyNoLabeler(t *testing.T) {
	with, err := NewTopology("r1")
	if err != nil {
		t.Fatal(err)
	}
	without := with
	without.NoLabeler = true
	for _, tc := range []struct {
		name    string
		top     Topology
		stage   string
		in      schemas.Kind
		out     schemas.Kind // "" for a sink
		inRet   jetstream.RetentionPolicy
		wantErr error
	}{
		{"labeler run logger", with, StageLogger, schemas.KindLabeled, "", jetstream.InterestPolicy, nil},
		{"labeler run labeler", with, StageLabeler, schemas.KindVerified, schemas.KindLabeled, jetstream.WorkQueuePolicy, nil},
		{"labeler run learner", with, StageLearner, schemas.KindLabeled, "", jetstream.InterestPolicy, nil},
		{"no-labeler sampler", without, StageSampler, schemas.KindPrompt, schemas.KindRollout, jetstream.WorkQueuePolicy, nil},
		{"no-labeler verifier", without, StageVerifier, schemas.KindRollout, schemas.KindVerified, jetstream.WorkQueuePolicy, nil},
		{"no-labeler logger", without, StageLogger, schemas.KindVerified, "", jetstream.InterestPolicy, nil},
		{"no-labeler labeler", without, StageLabeler, "", "", 0, ErrNoLabeler},
		{"no-labeler learner", without, StageLearner, "", "", 0, ErrNoLabeler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.top.Stage(tc.stage)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("Stage(%s) = %+v, %v; want %v", tc.stage, s, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Input.Kind != tc.in || s.Input.Retention != tc.inRet || s.Consumer != tc.stage {
				t.Errorf("input %+v consumer %s", s.Input, s.Consumer)
			}
			if (s.Output == nil) != (tc.out == "") || s.Output != nil && s.Output.Kind != tc.out {
				t.Errorf("output %+v, want %q", s.Output, tc.out)
			}
			rc, err := tc.top.RunnerConfig(tc.stage)
			if err != nil || rc.InputKind != tc.in || rc.Stream != s.Input.Stream {
				t.Errorf("RunnerConfig = %+v, %v", rc, err)
			}
		})
	}
	if _, err := without.Hop(schemas.KindLabeled); !errors.Is(err, ErrNoLabeler) {
		t.Errorf("Hop(labeled) without a labeler = %v, want ErrNoLabeler", err)
	}
	var kinds []schemas.Kind
	for _, h := range without.Hops() {
		kinds = append(kinds, h.Kind)
	}
	if want := []schemas.Kind{schemas.KindPrompt, schemas.KindRollout, schemas.KindVerified}; !slices.Equal(kinds, want) {
		t.Errorf("Hops without a labeler = %v, want %v", kinds, want)
	}
	if n := len(with.Hops()); n != 4 {
		t.Errorf("Hops with a labeler: %d, want 4", n)
	}
}

// TestEnsureNoLabeler creates a run without a labeler and checks its
// streams, that every consumer Ensure makes on the verified stream sees
// every batch (none competes with another), and that the stream lets a
// batch go once all of them acknowledged it.
func TestEnsureNoLabeler(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	ctx := context.Background()
	top, err := NewTopology("eval")
	if err != nil {
		t.Fatal(err)
	}
	top.NoLabeler = true
	top.VerifiedConsumers = []string{StageLogger, "tally"}
	for range 2 { // idempotent
		if err := top.Ensure(ctx, js); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
	}
	ver := mustHop(t, top, schemas.KindVerified)
	s, err := js.Stream(ctx, ver.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Retention; r != jetstream.InterestPolicy {
		t.Fatalf("verified retention %v, want interest", r)
	}
	if _, err := js.Stream(ctx, top.streamName("LABELED")); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("labeled stream of a run without a labeler: %v", err)
	}
	const n = 3
	for i := range n {
		if _, err := js.Publish(ctx, ver.Subject, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range top.VerifiedConsumers {
		c, err := js.Consumer(ctx, ver.Stream, name)
		if err != nil {
			t.Fatalf("consumer %s not created by Ensure: %v", name, err)
		}
		got := 0
		waitFor(t, 10*time.Second, name+" to get every message", func() bool {
			b, err := c.FetchNoWait(n)
			if err != nil {
				t.Fatal(err)
			}
			for m := range b.Messages() {
				got++
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
			return got >= n
		})
		if got != n {
			t.Errorf("consumer %s got %d messages, want %d", name, got, n)
		}
	}
	waitFor(t, 10*time.Second, "the verified stream to drop batches every consumer acked", func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
	if err := top.Delete(ctx, js); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := js.Stream(ctx, ver.Stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream after Delete: %v", err)
	}
}

// TestEnsureLabelerSettingErrors checks the combinations Ensure refuses:
// options that do not fit the run's labeler setting, and opening a run
// whose streams were created with the other setting.
func TestEnsureLabelerSettingErrors(t *testing.T) {
	srv := startServer(t, false)
	js := connectJS(t, srv)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		created   *bool // the run's streams made first with this NoLabeler, if set
		noLabeler bool
		labeled   []string
		verified  []string
		want      error
	}{
		{name: "labeled consumers without a labeler", noLabeler: true, labeled: []string{StageLearner}, want: ErrNoLabeler},
		{name: "verified consumers with a labeler", verified: []string{StageLogger}, want: ErrInvalidConfig},
		{name: "bad verified consumer name", noLabeler: true, verified: []string{"a.b"}, want: ErrInvalidName},
		{name: "opened without a labeler, created with one", created: new(false), noLabeler: true, want: ErrLayoutMismatch},
		{name: "opened with a labeler, created without one", created: new(true), want: ErrLayoutMismatch},
		{name: "empty labeled consumers without a labeler", noLabeler: true, labeled: []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)
			if tc.created != nil {
				first := Topology{Run: run, NoLabeler: *tc.created}
				if err := first.Ensure(ctx, js); err != nil {
					t.Fatal(err)
				}
			}
			top := Topology{Run: run, NoLabeler: tc.noLabeler, LabeledConsumers: tc.labeled, VerifiedConsumers: tc.verified}
			err := top.Ensure(ctx, js)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Ensure = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Ensure = %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}
