package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wsgrpo/wsgrpo/bench/reporting"
	"github.com/wsgrpo/wsgrpo/tracelog"
	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
)

// readerHashVar is the server's environment variable deploy/clickhouse's
// users file reads the reader's password hash from.
const readerHashVar = "WSGRPO_CLICKHOUSE_READER_PASSWORD_SHA256"

// TestReadOnlyClickHouseUser starts ClickHouse with deploy/clickhouse's
// users file, logs a run as the default (writing) user, and runs `sql`
// and `report` as wsgrpo_reader: reading works, and the server refuses
// every write, schema change, other database and wrong password.
func TestReadOnlyClickHouseUser(t *testing.T) {
	users, err := os.ReadFile(filepath.Join("..", "..", "deploy", "clickhouse", "users.xml"))
	if err != nil {
		t.Fatal(err)
	}
	const password = "reader-secret"
	sum := sha256.Sum256([]byte(password))
	srv := chtest.StartWith(t, chtest.Options{Users: []string{string(users)}, Env: []string{readerHashVar + "=" + hex.EncodeToString(sum[:])}})
	// The database the users file lets the reader see, filled by the
	// default user as the logger would.
	writer := fmt.Sprintf("clickhouse://127.0.0.1:%d/wsgrpo", srv.Port())
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", srv.Port())}})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, q := range []string{"CREATE DATABASE wsgrpo", "CREATE TABLE default.secret ENGINE = Memory AS SELECT 1 AS x"} {
		if err := admin.Exec(testCtx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows := reporting.SyntheticRows("grpo", 0, 64, 64, 16, 3)
	fillStore(t, tracelog.Config{DSN: writer}, rows)
	reader := fmt.Sprintf("clickhouse://wsgrpo_reader:%s@127.0.0.1:%d/wsgrpo", password, srv.Port())

	t.Run("sql reads", func(t *testing.T) {
		stdout, err := execute(t, newSQLCmd(), "--run", "grpo", "--clickhouse-dsn", reader, "--format", "csv", "SELECT count() FROM trajectories_dedup WHERE run_id = 'grpo'")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout, fmt.Sprint(len(rows))) {
			t.Fatalf("count: %s, want %d", stdout, len(rows))
		}
	})
	t.Run("report reads", func(t *testing.T) {
		stdout, err := execute(t, newReportCmd(), "--run", "grpo", "--dir", t.TempDir(), "--clickhouse-dsn", reader, "--out", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("run grpo: %d trajectories", len(rows)); !strings.Contains(stdout, want) {
			t.Fatalf("report output lacks %q:\n%s", want, stdout)
		}
	})
	for _, tc := range []struct{ name, query, says string }{
		{"insert", "INSERT INTO trajectories (run_id) VALUES ('forged')", "readonly"},
		{"insert select", "INSERT INTO trajectories SELECT * FROM trajectories LIMIT 1", "readonly"},
		{"drop", "DROP TABLE trajectories", "readonly"},
		{"truncate", "TRUNCATE TABLE trajectories", "readonly"},
		{"alter delete", "ALTER TABLE trajectories DELETE WHERE 1", "readonly"},
		{"create", "CREATE TABLE wsgrpo.forged (x UInt8) ENGINE = Memory", "readonly"},
		{"another database", "SELECT x FROM default.secret", "default"},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			// --read-only=false: the session asks for no readonly setting,
			// so what refuses is the user's profile on the server.
			_, err := execute(t, newSQLCmd(), "--run", "grpo", "--clickhouse-dsn", reader, "--read-only=false", tc.query)
			if !errors.Is(err, tracelog.ErrQuery) || !strings.Contains(strings.ToLower(err.Error()), tc.says) {
				t.Fatalf("%s as the reader: %v, want the server's refusal mentioning %q", tc.query, err, tc.says)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		wrong := strings.Replace(reader, password, "guess", 1)
		_, err := execute(t, newSQLCmd(), "--run", "grpo", "--clickhouse-dsn", wrong, "SELECT 1")
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "password") {
			t.Fatalf("wrong password: %v, want refused", err)
		}
	})
	// Nothing changed.
	stdout, err := execute(t, newSQLCmd(), "--run", "grpo", "--clickhouse-dsn", writer, "--format", "csv", "SELECT count() FROM trajectories")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, fmt.Sprint(len(rows))) {
		t.Fatalf("the log holds %s rows after the refused writes, want %d", stdout, len(rows))
	}
}
