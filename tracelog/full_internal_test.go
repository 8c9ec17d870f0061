package tracelog

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
)

// TestClassifyStorageFull checks that the engine's out-of-space errors
// wrap ErrStorageFull and name where the log is, and that others do not.
func TestClassifyStorageFull(t *testing.T) {
	full := &clickhouse.Exception{Code: 243, Name: "DB::Exception", Message: "Cannot reserve 1.00 MiB, not enough space"}
	enospc := &clickhouse.Exception{Code: 74, Name: "DB::ErrnoException", Message: "Cannot write to file /var/lib/clickhouse/x.bin: No space left on device"}
	other := &clickhouse.Exception{Code: 60, Name: "DB::Exception", Message: "Unknown table trajectories"}
	srv := &serverStore{addr: "ch.example:9000"}
	emb := &embeddedStore{cfg: Config{Dir: t.TempDir()}}
	for _, tc := range []struct {
		name      string
		got       error
		wantFull  bool
		wantWhere string
	}{
		{"server NOT_ENOUGH_SPACE", srv.classify(full), true, "the ClickHouse server ch.example:9000"},
		{"server ENOSPC", srv.classify(fmt.Errorf("send: %w", enospc)), true, "the ClickHouse server ch.example:9000"},
		{"server other exception", srv.classify(other), false, ""},
		{"server unreachable", srv.classify(errors.New("dial tcp: connection refused")), false, ""},
		{"embedded NOT_ENOUGH_SPACE", emb.full(errors.New("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)")), true, emb.cfg.Dir},
		{"embedded other", emb.full(errors.New("Code: 60. DB::Exception: Unknown table")), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.got, ErrStorageFull); got != tc.wantFull {
				t.Fatalf("errors.Is(%v, ErrStorageFull) = %v, want %v", tc.got, got, tc.wantFull)
			}
			var e *diskfull.Error
			if tc.wantFull && (!errors.As(tc.got, &e) || e.Where != tc.wantWhere || e.What != logWhat) {
				t.Errorf("%v: want a diskfull.Error of %s at %s", tc.got, logWhat, tc.wantWhere)
			}
		})
	}
	if err := srv.classify(full); !errors.Is(err, ErrQuery) {
		t.Errorf("%v: an exception must still wrap ErrQuery", err)
	}
}
