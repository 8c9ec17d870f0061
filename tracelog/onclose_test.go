package tracelog_test

import (
	"testing"

	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// TestOnClose: Config.OnClose runs once, when the store is first closed,
// on every backend.
func TestOnClose(t *testing.T) {
	for _, b := range chtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg, _ := b.Open(t)
			calls := 0
			cfg.OnClose = func() { calls++ }
			s := open(t, cfg)
			if calls != 0 {
				t.Fatalf("OnClose ran %d times before Close", calls)
			}
			for range 2 {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if calls != 1 {
				t.Fatalf("OnClose ran %d times after two Closes, want once", calls)
			}
		})
	}
}
