-- The trajectory log: one row per sampled trajectory.
--
-- Portable DDL: it runs on ClickHouse 18.16 (the Debian server used in tests)
-- and on current ClickHouse (chDB 26.x). Hence no LowCardinality, DateTime64,
-- Map, Bool, CODEC or IF NOT EXISTS on ALTER ... ADD COLUMN.
--
-- Idempotency: ReplacingMergeTree(inserted) keyed by ORDER BY
-- (run_id, trajectory_id). A redelivered batch writes rows with the same key
-- (and the same content); background merges keep one of them, the one with
-- the largest `inserted`. Until a merge happens both copies are stored, so
-- every counting query reads through FINAL (the trajectories_dedup view, or
-- `FROM trajectories FINAL`), which collapses the copies at read time.
-- Insert-time de-duplication is not used: it exists only for replicated
-- tables on 18.16 and would also miss a batch that was re-split differently.
CREATE TABLE IF NOT EXISTS trajectories
(
    run_id               String,
    step                 Int64,
    policy_version       Int64,
    trajectory_id        String,
    group_id             String,
    prompt_id            String,
    sample_index         Int32,
    task                 String,
    prompt               String,
    completion           String,
    completion_token_ids Array(Int32),
    completion_tokens    UInt32,
    steps                UInt32,
    finish_reason        String,
    extracted_answer     String,
    correct              UInt8,
    terminal_reward      Float32,
    step_rewards         Array(Float32),
    shaped_reward        Float32,
    advantage            Float32,
    shaper               String,
    sampler_logprob_sum  Float64,
    sample_ms            Float64,
    verify_ms            Float64,
    label_ms             Float64,
    replayed             UInt8,
    created              DateTime('UTC'),
    inserted             UInt64
)
ENGINE = ReplacingMergeTree(inserted)
ORDER BY (run_id, trajectory_id);
