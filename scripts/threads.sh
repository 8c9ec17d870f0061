#!/usr/bin/env bash
# Thread settings of the stages in a real run (docs/BENCHMARKS.md): the same
# 12-update ws-grpo run (a fitted labeler given, no evaluations) under each
# setting of ort.threads / ort.stage_threads.
#   scripts/threads.sh [LABELER_DIR]   (default runs/demo/labeler: run make demo first)
#   AHEAD=2 scripts/threads.sh           (the sampler samples step k+1 while the learner trains step k)
#   SETTINGS="all1:1:: all2:2::" ...     (a subset: name:threads:stages:stage_threads)
set -euo pipefail
cd "$(dirname "$0")/.."
LABELER=${1:-runs/demo/labeler}
OUT=${OUT:-runs/threads}
AHEAD=${AHEAD:-1}
SETTINGS=${SETTINGS:-"all1:1:: learner2:1:learner:2 sampler2:1:sampler:2 all2:2:: learner2labeler2:1:learner,labeler:2"}
B=./bin/wsgrpo
mkdir -p "$OUT"
for setting in $SETTINGS; do
  IFS=: read -r name base stages n <<<"$setting"
  cfg=$OUT/$name.yaml
  sed -e '/^ort:/,/^  threads:/d' -e "s/^run: demo/run: th-$name/" testdata/configs/demo.yaml > "$cfg"
  {
    echo "ort:"
    echo "  threads: $base"
    if [ -n "$stages" ]; then
      echo "  stage_threads:"
      for s in ${stages//,/ }; do echo "    $s: $n"; done
    fi
    echo "labeler:"
    echo "  artifact: $LABELER"
  } >> "$cfg"
  sed -i "s/^  eval_prompts: .*/  eval_prompts: 0/; s/^  steps: .*/  steps: 12/; s/^  ahead: .*/  ahead: $AHEAD/" "$cfg"
  start=$(date +%s.%N)
  $B train --config "$cfg" --dir "$OUT/runs/$name" --force --log-level error > "$OUT/$name.log" 2>&1
  end=$(date +%s.%N)
  wall=$(echo "$end - $start" | bc)
  q="SELECT round(avg(wait_ms)), round(avg(forward_backward_ms)), round(avg(optimizer_ms)), round(avg(publish_ms)) FROM steps_dedup WHERE run_id = 'th-$name' AND step > 2"
  s=$($B sql --run "$OUT/runs/$name" --format csv "$q" | tail -1)
  q2="SELECT round(avg(t / ms * 1000)) FROM (SELECT step, sum(completion_tokens) t, max(sample_ms) ms FROM trajectories_dedup WHERE run_id = 'th-$name' AND step > 2 GROUP BY step)"
  tps=$($B sql --run "$OUT/runs/$name" --format csv "$q2" | tail -1)
  echo "$name ahead=$AHEAD wall_s=$wall wait,fb,opt,pub_ms=$s sampler_tok_s=$tps load=$(cut -d' ' -f1 /proc/loadavg)"
done
