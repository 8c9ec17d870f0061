-- Whole-run totals of one run: size, accuracy, truncation, the span of
-- training steps and the completion length (tokens) and reasoning steps of
-- all, correct and incorrect trajectories (mean, median, p90). Always one
-- row; n_all = 0 for a run without trajectories.
--
-- Arguments: run_id.
-- Portable: ClickHouse 18.16 and chDB 26.x.
SELECT
    sum(correct) AS correct_answers,
    countIf(finish_reason = 'length') AS truncated,
    sum(completion_tokens) AS total_tokens,
    max(completion_tokens) AS max_tokens,
    min(step) AS first_step,
    max(step) AS last_step,
    uniqExact(step) AS training_steps,
    count() AS n_all,
    avg(completion_tokens) AS mean_tokens_all,
    quantileExact(0.5)(completion_tokens) AS median_tokens_all,
    quantileExact(0.9)(completion_tokens) AS p90_tokens_all,
    avg(steps) AS mean_steps_all,
    quantileExact(0.5)(steps) AS median_steps_all,
    quantileExact(0.9)(steps) AS p90_steps_all,
    countIf(correct = 1) AS n_correct,
    avgIf(completion_tokens, correct = 1) AS mean_tokens_correct,
    quantileExactIf(0.5)(completion_tokens, correct = 1) AS median_tokens_correct,
    quantileExactIf(0.9)(completion_tokens, correct = 1) AS p90_tokens_correct,
    avgIf(steps, correct = 1) AS mean_steps_correct,
    quantileExactIf(0.5)(steps, correct = 1) AS median_steps_correct,
    quantileExactIf(0.9)(steps, correct = 1) AS p90_steps_correct,
    countIf(correct = 0) AS n_incorrect,
    avgIf(completion_tokens, correct = 0) AS mean_tokens_incorrect,
    quantileExactIf(0.5)(completion_tokens, correct = 0) AS median_tokens_incorrect,
    quantileExactIf(0.9)(completion_tokens, correct = 0) AS p90_tokens_incorrect,
    avgIf(steps, correct = 0) AS mean_steps_incorrect,
    quantileExactIf(0.5)(steps, correct = 0) AS median_steps_incorrect,
    quantileExactIf(0.9)(steps, correct = 0) AS p90_steps_incorrect
FROM trajectories_dedup
WHERE run_id = ?
