-- Columns replay needs to rebuild a hand-off row exactly (prompt tokens,
-- per-token logprobs for importance correction, reasoning-step boundaries,
-- the labeler's prefix scores and per-step advantages), plus `labeled`,
-- which tells rows written from the labeled stream from rows of runs
-- without a labeler. Existing rows get the column defaults.
--
-- One column per ALTER: the migration runner skips an ADD COLUMN whose
-- column already exists, which makes a re-run after a crash safe on 18.16
-- (which lacks ADD COLUMN IF NOT EXISTS).
ALTER TABLE trajectories ADD COLUMN labeled UInt8;
ALTER TABLE trajectories ADD COLUMN reference_answer String;
ALTER TABLE trajectories ADD COLUMN prompt_token_ids Array(Int32);
ALTER TABLE trajectories ADD COLUMN token_logprobs Array(Float32);
ALTER TABLE trajectories ADD COLUMN step_ends Array(Int32);
ALTER TABLE trajectories ADD COLUMN step_scores Array(Float32);
ALTER TABLE trajectories ADD COLUMN step_advantages Array(Float32);
ALTER TABLE trajectories ADD COLUMN created_ms Int64;
-- A view's columns are fixed when it is created: re-create it so that it
-- shows the new columns.
DROP TABLE IF EXISTS trajectories_dedup;
CREATE VIEW trajectories_dedup AS SELECT * FROM trajectories FINAL;
