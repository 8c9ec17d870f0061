-- Completion-length distribution of one run at the given training steps
-- (the report asks for the first and the last): trajectories per length
-- bucket of fixed width, with how many were correct and truncated.
-- bucket is the bucket index: it holds lengths [bucket*width, (bucket+1)*width).
--
-- Arguments: bucket width (tokens, >= 1), run_id, step, step.
-- Portable: ClickHouse 18.16 and chDB 26.x.
SELECT
    step,
    intDiv(completion_tokens, ?) AS bucket,
    count() AS n,
    sum(completion_tokens) AS total_tokens,
    sum(correct) AS correct_answers,
    countIf(finish_reason = 'length') AS truncated
FROM trajectories_dedup
WHERE run_id = ? AND step IN (?, ?)
GROUP BY step, bucket
ORDER BY step, bucket
