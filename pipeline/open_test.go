package pipeline

import (
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestOpenAcrossStalledServer stalls a nats-server process (SIGSTOP) for
// longer than the client's 5 s API timeout while a stage starts: opening
// the run's weight store, run state and lock, as a stage process does
// while the server restarts, retries the lookups that timed out and
// succeeds once the server answers again.
func TestOpenAcrossStalledServer(t *testing.T) {
	if testing.Short() {
		t.Skip("stalls a nats-server process for 6 s")
	}
	if raceEnabled {
		// Its timing is the point: a 6 s stall against the client's 5 s
		// API timeout. Under the race detector the calls after the bucket
		// lookups are slow enough to fall into the stall too.
		t.Skip("timing-bound (a 6 s server stall against 5 s timeouts); run without -race")
	}
	srv := startProcServer(t)
	js := srv.connect(t)
	top := ensureRun(t, js, "stalled", jetstream.FileStorage)

	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := time.AfterFunc(6*time.Second, func() { _ = srv.Signal(syscall.SIGCONT) })
	t.Cleanup(func() { resumed.Stop(); _ = srv.Signal(syscall.SIGCONT) })
	// No deadline, as in a stage process: each JetStream API call then
	// times out after the client's default 5 s.
	ctx := t.Context()
	type result struct {
		what string
		err  error
	}
	results := make(chan result, 3)
	go func() {
		_, err := OpenWeightStore(ctx, js, top)
		results <- result{"weight store", err}
	}()
	go func() {
		_, err := OpenRunState(ctx, js, top)
		results <- result{"run state", err}
	}()
	go func() {
		l, err := AcquireLock(ctx, js, top, StageLearner, "stalled", time.Minute)
		if err == nil {
			err = l.Release(ctx)
		}
		results <- result{"lock", err}
	}()
	for range 3 {
		if r := <-results; r.err != nil {
			t.Errorf("%s: %v", r.what, r.err)
		}
	}
}
