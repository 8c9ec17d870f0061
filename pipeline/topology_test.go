package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

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
		b, err := c.FetchNoWait(1)
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
