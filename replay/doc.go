// Package replay re-publishes trajectories stored in the trajectory log
// into a run's hand-off streams, as the schema of the hand-off a stage
// consumes: distinct prompts into the sampler's prompt stream, rollouts into
// the verifier's, verified rows into the labeler's and labeled rows into the
// learner's. A new labeler can so re-score old rollouts, a learner train
// offline from stored trajectories, or a verifier change be re-applied.
//
// Every replayed row has its replayed column set, so the logger writes it
// marked. Publication is idempotent: a batch's message id derives from the
// source run, the target, the ids of the rows it holds and its index, so
// running the same replay again within the stream's duplicate window stores
// nothing new.
//
// Selection: the rows of one run, optionally limited to a range of training
// steps (Steps) and by a SQL boolean expression (Options.Where). The
// expression is raw SQL for trusted users, but it is validated before use
// (ValidateWhere): it may only name columns of the trajectories table, a
// fixed list of scalar functions and operators, and literals; no statement
// separators, comments, subqueries, other tables or unbalanced parentheses.
// The run and step filters are bound as arguments, and the expression is
// parenthesised after them, so it can narrow the selection but never widen
// it past the run.
//
// Reading: the selected groups are planned first (one aggregate query),
// then read in pages of whole groups, each page a range of the log's sort
// key (run_id, trajectory_id) that the primary index narrows, so every row
// is read once. Batches hold whole groups, never mix training steps, and
// follow step order within a page (the whole selection, up to
// DefaultPageRows rows).
package replay
