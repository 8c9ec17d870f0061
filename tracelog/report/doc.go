// Package report answers the questions people ask about reasoning length
// in a run's trajectory log: how long completions and their reasoning are
// over training (mean, median and p90, for correct and incorrect answers
// apart), how many tokens a correct answer costs, how the length
// distribution moved from the first training step to the last, how many
// completions were truncated, how accuracy depends on length, and how two
// runs (say GRPO and WS-GRPO) compare.
//
// The questions are SQL files kept in this package (sql/*.sql, embedded),
// written to run unchanged on ClickHouse 18.16 and on chDB 26.x. Every one
// reads the de-duplicated view (trajectories_dedup), so a redelivered batch
// is never counted twice. Build runs them against a tracelog.Store for one
// run and returns a Report (JSON-able); Compare sets two Reports side by
// side; Write renders PNG plots (gonum.org/v1/plot), a markdown summary
// and the JSON into a directory.
package report
