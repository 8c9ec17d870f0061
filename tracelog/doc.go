// Package tracelog is the trajectory log: every trajectory a run samples,
// with its rewards, advantage and timings, in a ClickHouse table that SQL
// analytics read.
//
// Two backends sit behind Store, both real ClickHouse with the same DDL
// (package schemas/ddl) and SQL:
//
//   - the server backend speaks the native protocol through
//     github.com/ClickHouse/clickhouse-go/v2 when Config.DSN is set;
//   - the embedded backend (the default) runs chDB, the ClickHouse engine as
//     a shared library (libchdb.so) loaded at run time, with its data in
//     Config.Dir. When the library is missing Open returns ErrNoLibrary,
//     which says how to install it; nothing else in the binary depends on it.
//
// Writes are idempotent: the table is a ReplacingMergeTree keyed by
// (run_id, trajectory_id), and every counting query reads through FINAL
// (the trajectories_dedup view), so a redelivered batch never counts twice.
// The learner's step log (StepRow, Store.InsertSteps and Store.Steps) is
// the steps table, keyed by (run_id, step) the same way and read through
// FINAL (the steps_dedup view), so a step written again after a learner
// restart is one row.
//
// Query binds ? placeholders on the client side for both backends (ClickHouse
// 18.16 has no server-side parameters): string arguments are quoted and
// escaped, so an argument can never end its literal.
package tracelog
