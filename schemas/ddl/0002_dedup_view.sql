-- The de-duplicated view of the log: what every counting query reads.
-- FINAL merges the copies a redelivered batch left behind at read time.
CREATE VIEW IF NOT EXISTS trajectories_dedup AS SELECT * FROM trajectories FINAL;
