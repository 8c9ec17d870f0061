-- The runs in the log: trajectories and training steps per run.
--
-- Arguments: none.
-- Portable: ClickHouse 18.16 and chDB 26.x.
SELECT
    run_id,
    count() AS n,
    uniqExact(step) AS training_steps,
    min(step) AS first_step,
    max(step) AS last_step
FROM trajectories_dedup
GROUP BY run_id
ORDER BY run_id
