-- Accuracy against completion length over a whole run: trajectories per
-- length bucket of fixed width, with how many were correct and truncated.
-- bucket is the bucket index: it holds lengths [bucket*width, (bucket+1)*width).
--
-- Arguments: bucket width (tokens, >= 1), run_id.
-- Portable: ClickHouse 18.16 and chDB 26.x.
SELECT
    intDiv(completion_tokens, ?) AS bucket,
    count() AS n,
    sum(completion_tokens) AS total_tokens,
    sum(correct) AS correct_answers,
    countIf(finish_reason = 'length') AS truncated
FROM trajectories_dedup
WHERE run_id = ?
GROUP BY bucket
ORDER BY bucket
