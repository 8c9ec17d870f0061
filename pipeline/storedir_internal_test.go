package pipeline

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestJetStreamFullNamesStoreDir: with RunnerConfig.StoreDir set (an
// embedded server), a write the server refused for space is reported as
// that directory's store, with its free space, even when the server's own
// check (StorageErr) has not seen the store full yet.
func TestJetStreamFullNamesStoreDir(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{cfg: RunnerConfig{StoreDir: dir, StorageErr: func() error { return nil }}}
	refused := fmt.Errorf("publish: %w", &jetstream.APIError{Code: 503, ErrorCode: jsInsufficientResources, Description: "insufficient resources"})
	err := r.jetStreamFull(refused, 100)
	var sf *StorageFullError
	if !errors.As(err, &sf) || sf.Where != dir || sf.Free < 0 || sf.Need != 100 || !errors.Is(err, ErrStorageFull) {
		t.Fatalf("jetStreamFull(%v) = %v, want the store at %s with its free space and the write's size", refused, err, dir)
	}
	if err := r.jetStreamFull(errors.New("timeout"), 100); err != nil {
		t.Fatalf("a timeout is not a full store: %v", err)
	}
}
