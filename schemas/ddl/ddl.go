// Package ddl holds the trajectory-log DDL as versioned SQL migrations,
// embedded into the binary.
//
// Each file NNNN_name.sql is one migration, applied in version order and
// recorded in the schema_migrations table. Statements end with a semicolon
// at the end of a line; lines starting with "--" are comments. The DDL is
// portable across ClickHouse 18.16 and current ClickHouse (chDB 26.x).
// ALTER TABLE ... ADD COLUMN names one column per statement, so that the
// migration runner can skip a column that already exists.
package ddl

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed *.sql
var files embed.FS

// ErrMigration is returned for a migration file whose name or content is
// malformed.
var ErrMigration = errors.New("ddl: malformed migration")

// Table and view names the migrations create.
const (
	// Table is the trajectory log table.
	Table = "trajectories"
	// DedupView is the de-duplicated view every counting query reads.
	DedupView = "trajectories_dedup"
	// StepsTable is the learner's step log: one row per update.
	StepsTable = "steps"
	// StepsDedupView is the de-duplicated view of StepsTable.
	StepsDedupView = "steps_dedup"
	// MigrationsTable records the applied migration versions.
	MigrationsTable = "schema_migrations"
)

// MigrationsTableDDL creates the table that records applied migrations. It
// is a ReplacingMergeTree so that two processes migrating at once leave one
// row per version.
const MigrationsTableDDL = `CREATE TABLE IF NOT EXISTS ` + MigrationsTable + ` (version UInt32, name String, applied DateTime('UTC')) ENGINE = ReplacingMergeTree ORDER BY version`

// Migration is one versioned migration.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations returns every embedded migration in version order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMigration, err)
	}
	out := make([]Migration, 0, len(names))
	seen := map[int]string{}
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMigration, n, err)
		}
		m, err := Parse(n, string(b))
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[m.Version]; ok {
			return nil, fmt.Errorf("%w: version %d in both %s and %s", ErrMigration, m.Version, prev, n)
		}
		seen[m.Version] = n
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Parse reads one migration: file is its name (NNNN_name.sql), text its
// content.
func Parse(file, text string) (Migration, error) {
	base := strings.TrimSuffix(file, ".sql")
	num, name, ok := strings.Cut(base, "_")
	v, err := strconv.Atoi(num)
	if !ok || err != nil || v <= 0 || name == "" || base == file {
		return Migration{}, fmt.Errorf("%w: file name %q is not NNNN_name.sql", ErrMigration, file)
	}
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(line)
		if strings.HasSuffix(t, ";") {
			s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			stmts = append(stmts, strings.TrimSpace(s))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		return Migration{}, fmt.Errorf("%w: %s: last statement lacks a closing semicolon", ErrMigration, file)
	}
	if len(stmts) == 0 {
		return Migration{}, fmt.Errorf("%w: %s holds no statement", ErrMigration, file)
	}
	return Migration{Version: v, Name: name, Statements: stmts}, nil
}
