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
