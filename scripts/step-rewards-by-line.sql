-- Mean WS-GRPO step reward by kind of arith line, for correct and wrong
-- rollouts: progress lines, re-checks ("check ..."), the answer ("A:..."),
-- and the "verify:" block after the answer. Run it on a ws-grpo run's log
-- (the first 10 updates score rollouts of the starting policy):
--   wsgrpo sql --run R -- "$(sed s/@RUN@/R/ scripts/step-rewards-by-line.sql)"
-- Steps are the non-empty lines (the sampler's default segmentation), so
-- the i-th line has the i-th step reward.
WITH arrayFilter(x -> x != '', splitByChar('\n', completion)) AS lines,
     indexOf(lines, 'verify:') AS vpos
SELECT kind, correct, count() AS n, round(avg(r), 3) AS mean_reward, round(avg(r < 0.5), 3) AS below_half
FROM (
  SELECT arrayJoin(arrayMap((l, r, i) -> (multiIf(vpos > 0 AND i > vpos, 'verify-block', l = 'verify:', 'verify:',
           startsWith(l, 'check'), 'check', startsWith(l, 'A:'), 'answer', 'progress'), r),
         lines, step_rewards, arrayEnumerate(lines))) AS kr,
         kr.1 AS kind, kr.2 AS r, correct
  FROM trajectories_dedup
  WHERE run_id = '@RUN@' AND length(step_rewards) = length(lines) AND step <= 10
)
GROUP BY kind, correct ORDER BY kind, correct
