-- The learner's step log: one row per learner update.
--
-- Idempotency as for trajectories: ReplacingMergeTree(inserted) keyed by
-- ORDER BY (run_id, step). A learner that restarts from a checkpoint and
-- writes a step again leaves two copies until a merge keeps the one with
-- the largest `inserted`; readers go through FINAL (the steps_dedup view,
-- or `FROM steps FINAL`), which collapses them at read time.
--
-- `skipped` is 1 for an update that was not applied because its loss or
-- gradient was not finite. The ratio columns are means over the batch's
-- tokens; staleness is the mean policy-version lag of the batch's rows.
CREATE TABLE IF NOT EXISTS steps
(
    run_id              String,
    step                Int64,
    policy_version      Int64,
    shaper              String,
    loss                Float64,
    kl                  Float64,
    clip_frac           Float64,
    ratio               Float64,
    grad_norm           Float64,
    mean_reward         Float64,
    accuracy            Float64,
    mean_tokens         Float64,
    mean_steps          Float64,
    staleness           Float64,
    rows                UInt32,
    skipped             UInt8,
    wait_ms             Float64,
    forward_backward_ms Float64,
    optimizer_ms        Float64,
    publish_ms          Float64,
    created             DateTime('UTC'),
    inserted            UInt64
)
ENGINE = ReplacingMergeTree(inserted)
ORDER BY (run_id, step);
-- The de-duplicated view of the step log.
CREATE VIEW IF NOT EXISTS steps_dedup AS SELECT * FROM steps FINAL;
