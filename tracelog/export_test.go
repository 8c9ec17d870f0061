package tracelog

import (
	"context"
	"fmt"
)

// MigrateTo applies the migrations up to version n (tests of upgrades).
func MigrateTo(ctx context.Context, s Store, n int) error {
	m, ok := s.(interface {
		migrateTo(context.Context, int) error
	})
	if !ok {
		return fmt.Errorf("%T cannot migrate", s)
	}
	return m.migrateTo(ctx, n)
}

// Exec runs a statement that returns nothing.
func Exec(ctx context.Context, s Store, q string) error {
	return s.(executor).exec(ctx, q)
}

// syntheticRows is logstore.SyntheticRows for the package's internal tests,
// which cannot import bench/logstore (it imports this package): the
// external test package sets it when it initialises (synthetic_test.go).
var syntheticRows func(run string, n, tokens int, seed uint64) []Row

// SetSyntheticRows sets the generator the internal tests use.
func SetSyntheticRows(f func(run string, n, tokens int, seed uint64) []Row) { syntheticRows = f }
