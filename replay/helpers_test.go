package replay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// newChecked returns a checked allocator that fails t if anything it
// allocated is still live at cleanup.
func newChecked(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// ensureRun creates the streams of run and returns its topology.
func ensureRun(t testing.TB, js jetstream.JetStream, run string) pipeline.Topology {
	t.Helper()
	topo, err := pipeline.NewTopology(run)
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Ensure(testCtx(t), js); err != nil {
		t.Fatal(err)
	}
	return topo
}

// consumer is a durable pull consumer a test reads a hop with.
type consumer struct {
	cons jetstream.Consumer
	hop  pipeline.Hop
}

// newConsumer creates a durable consumer on the hop of kind k in topo.
// Create it before publishing to an interest-retention stream.
func newConsumer(t testing.TB, js jetstream.JetStream, topo pipeline.Topology, k schemas.Kind) *consumer {
	t.Helper()
	hop, err := topo.Hop(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(testCtx(t), hop.Stream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateOrUpdateConsumer(testCtx(t), jetstream.ConsumerConfig{
		Durable: "test-reader", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &consumer{cons: c, hop: hop}
}

// batch is one message read back from a hop.
type batch struct {
	kind  string
	msgID string
	ids   []string
	rows  any // []schemas.Prompt, []schemas.Rollout, ...
}

// readAll fetches every message now in the stream (acking each), decodes it
// with mem, and returns the batches.
func (c *consumer) readAll(t testing.TB, mem memory.Allocator) []batch {
	t.Helper()
	var out []batch
	for {
		msgs, err := c.cons.FetchNoWait(8)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range msgs.Messages() {
			n++
			out = append(out, decodeMsg(t, c.hop.Kind, m, mem))
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
	}
}

func decodeMsg(t testing.TB, k schemas.Kind, m jetstream.Msg, mem memory.Allocator) batch {
	t.Helper()
	rec, err := schemas.Decode(k, m.Data(), mem)
	if err != nil {
		t.Fatalf("decode %s message: %v", k, err)
	}
	defer rec.Release()
	b := batch{kind: m.Headers().Get(pipeline.HeaderKind), msgID: m.Headers().Get(jetstream.MsgIDHeader)}
	if b.ids, err = schemas.RowIDs(rec); err != nil {
		t.Fatal(err)
	}
	switch k {
	case schemas.KindPrompt:
		b.rows, err = schemas.ReadPrompts(rec)
	case schemas.KindRollout:
		b.rows, err = schemas.ReadRollouts(rec)
	case schemas.KindVerified:
		b.rows, err = schemas.ReadVerified(rec)
	case schemas.KindLabeled:
		b.rows, err = schemas.ReadLabeled(rec)
	default:
		err = fmt.Errorf("kind %q", k)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// streamMsgs returns the number of messages stored in the hop's stream.
func streamMsgs(t testing.TB, js jetstream.JetStream, hop pipeline.Hop) uint64 {
	t.Helper()
	s, err := js.Stream(testCtx(t), hop.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// insertRows opens nothing: it writes rows to a migrated store.
func insertRows(t testing.TB, s tracelog.Store, rows []tracelog.Row) {
	t.Helper()
	if err := s.Insert(testCtx(t), rows); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing t after a minute.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
