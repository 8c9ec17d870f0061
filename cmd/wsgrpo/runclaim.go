package main

import (
	"sync"

	"github.com/wsgrpo/wsgrpo/tracelog"
)

// claimRunDir readies cfg's run directory for a command that writes into
// it: created when missing and marked a run directory (runMarker). Call
// release when done.
func claimRunDir(cfg Config) (release func(), err error) {
	if err := markRunDir(cfg.RunDir(), cfg.Run); err != nil {
		return nil, err
	}
	return func() {}, nil
}

// heldStore is a trajectory log whose Close also ends the claim on its run
// directory.
type heldStore struct {
	tracelog.Store
	once    sync.Once
	release func()
}

// Close closes the store, then ends the claim.
func (s *heldStore) Close() error {
	err := s.Store.Close()
	s.once.Do(s.release)
	return err
}
