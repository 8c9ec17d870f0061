package tracelog

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/wsgrpo/wsgrpo/schemas/ddl"
)

// executor is what the migration runner needs from a backend.
type executor interface {
	exec(ctx context.Context, sql string) error
	query(ctx context.Context, sql string) (*Result, error)
}

// addColumn matches a one-column ALTER TABLE ... ADD COLUMN statement.
var addColumn = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+([A-Za-z0-9_]+)\s+ADD\s+COLUMN\s+([A-Za-z0-9_]+)\s`)

// createTable matches a CREATE TABLE or CREATE VIEW statement.
var createTable = regexp.MustCompile(`(?is)^CREATE\s+(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z0-9_]+)\s`)

// migrate applies every embedded migration up to version upTo (all when
// upTo <= 0) that schema_migrations does not list, in order, recording each
// one after its statements succeed. A migration interrupted half-way runs
// again from its first statement: CREATE statements say IF NOT EXISTS, and
// an ADD COLUMN whose column exists is skipped.
//
// Several processes may migrate one server's database at once (the stage
// processes of a run start together, and the logger and the learner both
// open the log for writing). A statement that fails because another
// migrator applied it first (its column or table now exists) counts as
// applied. Each migration that adds columns ends by dropping and creating
// the dedup view again, so the view created after the last drop of any
// migrator has every column.
func migrate(ctx context.Context, ex executor, upTo int, log *slog.Logger) error {
	ms, err := ddl.Migrations()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMigration, err)
	}
	if err := execMigration(ctx, ex, ddl.MigrationsTableDDL); err != nil {
		return fmt.Errorf("%w: create %s: %w", ErrMigration, ddl.MigrationsTable, err)
	}
	res, err := ex.query(ctx, "SELECT DISTINCT version FROM "+ddl.MigrationsTable)
	if err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrMigration, ddl.MigrationsTable, err)
	}
	applied := map[uint64]bool{}
	var newest uint64
	for _, r := range res.Rows {
		if v, ok := r[0].(uint64); ok {
			applied[v] = true
			newest = max(newest, v)
		}
	}
	if last := ms[len(ms)-1].Version; newest > uint64(last) {
		log.Warn("trajectory log schema is newer than this build", "schema_version", newest, "build_version", last)
	}
	for _, m := range ms {
		if upTo > 0 && m.Version > upTo {
			break
		}
		if applied[uint64(m.Version)] {
			continue
		}
		for i, stmt := range m.Statements {
			skip, err := columnExists(ctx, ex, stmt)
			if err != nil {
				return fmt.Errorf("%w: %04d_%s statement %d: %w", ErrMigration, m.Version, m.Name, i+1, err)
			}
			if skip {
				continue
			}
			if err := execMigration(ctx, ex, stmt); err != nil {
				return fmt.Errorf("%w: %04d_%s statement %d: %w", ErrMigration, m.Version, m.Name, i+1, err)
			}
		}
		rec, err := Bind("INSERT INTO "+ddl.MigrationsTable+" (version, name, applied) SELECT ?, ?, ?",
			m.Version, m.Name, time.Now())
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMigration, err)
		}
		if err := ex.exec(ctx, rec); err != nil {
			return fmt.Errorf("%w: record %04d_%s: %w", ErrMigration, m.Version, m.Name, err)
		}
		log.Info("trajectory log migration applied", "version", m.Version, "name", m.Name)
	}
	return nil
}

// columnExists reports whether stmt adds a column that the table already
// has.
func columnExists(ctx context.Context, ex executor, stmt string) (bool, error) {
	m := addColumn.FindStringSubmatch(stmt)
	if m == nil {
		return false, nil
	}
	q, err := Bind("SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = ? AND name = ?", m[1], m[2])
	if err != nil {
		return false, err
	}
	return countPositive(ctx, ex, q)
}

// countPositive runs q, a SELECT count(), and reports whether it counted
// anything.
func countPositive(ctx context.Context, ex executor, q string) (bool, error) {
	res, err := ex.query(ctx, q)
	if err != nil {
		return false, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return false, fmt.Errorf("%w: %s returned %d rows", ErrQuery, q, len(res.Rows))
	}
	n, _ := res.Rows[0][0].(uint64)
	return n > 0, nil
}

// migrationAttempts bounds how often execMigration runs a CREATE that
// failed while the table or view it creates did not exist afterwards
// (another migrator dropped it between the two: the dedup view).
const migrationAttempts = 5

// execMigration runs one statement of a migration. A statement that fails
// because another process applied it first counts as applied; a CREATE
// whose view another process dropped again in the meantime is tried again.
func execMigration(ctx context.Context, ex executor, stmt string) error {
	for attempt := 1; ; attempt++ {
		err := ex.exec(ctx, stmt)
		if err == nil {
			return nil
		}
		if done, cerr := appliedMeanwhile(ctx, ex, stmt); cerr == nil && done {
			return nil
		}
		if attempt == migrationAttempts || !createTable.MatchString(stmt) || ctx.Err() != nil {
			return err
		}
	}
}

// appliedMeanwhile reports whether stmt, which just failed, is an ADD
// COLUMN whose column or a CREATE whose table or view now exists: another
// process migrating the same database applied it first.
func appliedMeanwhile(ctx context.Context, ex executor, stmt string) (bool, error) {
	if m := createTable.FindStringSubmatch(stmt); m != nil {
		q, err := Bind("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", m[1])
		if err != nil {
			return false, err
		}
		return countPositive(ctx, ex, q)
	}
	return columnExists(ctx, ex, stmt)
}
