-- Schema version 2 of the hand-off rows: group_size (G, the samples in the
-- prompt's group) on rollouts and labeler (the id of the preference-model
-- artifact that scored the row, empty for shapers without one) on labeled
-- rows. Existing rows read the type defaults, 0 and ''.
--
-- One column per ALTER, as in migration 3, so that a re-run after a crash
-- skips the columns that already exist.
ALTER TABLE trajectories ADD COLUMN group_size Int32;
ALTER TABLE trajectories ADD COLUMN labeler String;
-- The view's column list is fixed when it is created: re-create it.
DROP TABLE IF EXISTS trajectories_dedup;
CREATE VIEW trajectories_dedup AS SELECT * FROM trajectories FINAL;
