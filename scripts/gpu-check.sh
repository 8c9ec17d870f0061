#!/usr/bin/env bash
# gpu-check.sh: wsgrpo on CUDA against CPU, for a machine with an NVIDIA GPU
# and a GPU build of ONNX Runtime (libonnxruntime.so.1 with
# libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so
# beside it). It runs:
#   1. the sampler (greedy `wsgrpo eval`) on the same prompts on CPU and on
#      CUDA, and counts the completions that agree token for token;
#   2. `wsgrpo bench sampler` on each provider (sampler tokens/s and
#      rollouts/s against raw decode);
#   3. `wsgrpo bench learner` on each provider (the learner's update against
#      the raw training step).
# Each CUDA pass sets --ort-require-cuda: a library without a usable CUDA
# provider fails it with that error instead of quietly running on CPU.
#
#   WSGRPO_ORT_LIB=/opt/ort-gpu/lib/libonnxruntime.so.1 bash scripts/gpu-check.sh [--out DIR]
#
# Options:
#   --out DIR      where the runs, the bench outputs and gpu-check.md go
#                  (default: a new directory under /tmp)
#   --model DIR    the policy (default testdata/base; a Hugging Face
#                  checkpoint directory works too)
#   --n N          eval prompts (default 64)
#   --quick        smaller benches (a smoke run, not for the docs)
#   --cpu-only     run the "CUDA" passes on CPU too: checks this script on a
#                  machine without a GPU (agreement must then be N of N)
# The binary is $WSGRPO_BIN, else bin/wsgrpo, else built with go into bin/.
# Its figures go into docs/BENCHMARKS.md ("CUDA").
set -euo pipefail
cd "$(dirname "$0")/.."

out="" model="testdata/base" n=64 quick="" cpu_only=0
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out="$2"; shift 2 ;;
	--model) model="$2"; shift 2 ;;
	--n) n="$2"; shift 2 ;;
	--quick) quick="--quick"; shift ;;
	--cpu-only) cpu_only=1; shift ;;
	-h | --help) sed -n '2,29p' "$0"; exit 0 ;;
	*) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$n" in '' | *[!0-9]* | 0) echo "gpu-check: --n $n: want a positive whole number" >&2; exit 2 ;; esac
[ -d "$model" ] || { echo "gpu-check: --model $model: no such directory" >&2; exit 2; }
[ -n "$out" ] || out=$(mktemp -d /tmp/wsgrpo-gpu-check.XXXXXX)
mkdir -p "$out"

bin="${WSGRPO_BIN:-bin/wsgrpo}"
if [ ! -x "$bin" ]; then
	command -v go >/dev/null || { echo "gpu-check: no $bin and no go to build it: build it elsewhere (make build) and set WSGRPO_BIN" >&2; exit 2; }
	go build -o bin/wsgrpo ./cmd/wsgrpo
	bin=bin/wsgrpo
fi

dev=cuda dev_flags=(--ort-provider cuda --ort-require-cuda)
if [ "$cpu_only" = 1 ]; then
	dev=cpu dev_flags=(--ort-provider cpu)
else
	[ -n "${WSGRPO_ORT_LIB:-}" ] || echo "gpu-check: WSGRPO_ORT_LIB is not set: the default library is the CPU build, and the CUDA passes will fail" >&2
	command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu-check: GPU: /' || echo "gpu-check: no nvidia-smi" >&2
fi
echo "gpu-check: model $model, $n prompts, device passes on $dev, output in $out"

# 1. Greedy eval on both providers; completions compared by prompt.
evalrun() { # name provider-flags...
	local name="$1"; shift
	"$bin" eval --model "$model" --task arith --n "$n" --temperature 0 --json \
		--run "gpucheck-$name" --dir "$out/eval-$name" --force --log-level warn "$@" >"$out/eval-$name.json"
	"$bin" sql --run "$out/eval-$name" --format csv --log-level warn \
		"SELECT prompt, toString(completion_token_ids) FROM trajectories_dedup WHERE run_id = 'gpucheck-$name' ORDER BY prompt" |
		LC_ALL=C sort >"$out/completions-$name.csv"
}
evalrun cpu --ort-provider cpu
evalrun dev "${dev_flags[@]}"
rows=$(($(wc -l <"$out/completions-cpu.csv") - 1))
same=$(($(LC_ALL=C comm -12 "$out/completions-cpu.csv" "$out/completions-dev.csv" | wc -l) - 1))
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# 2 and 3. The sampler and learner benches on both providers.
for p in cpu dev; do
	flags=(--ort-provider cpu)
	[ "$p" = dev ] && flags=("${dev_flags[@]}")
	"$bin" bench sampler learner $quick "${flags[@]}" --log-level warn >"$out/bench-$p.txt"
done

{
	echo "# gpu-check ($(date -u +%Y-%m-%dT%H:%MZ), device passes on $dev)"
	echo
	echo "model $model; $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader | head -1 || echo 'no GPU')"
	echo
	echo "| | CPU | $dev |"
	echo "|---|---|---|"
	echo "| greedy eval accuracy | $(field "$out/eval-cpu.json" accuracy) | $(field "$out/eval-dev.json" accuracy) |"
	echo "| mean completion tokens | $(field "$out/eval-cpu.json" mean_tokens) | $(field "$out/eval-dev.json" mean_tokens) |"
	echo "| eval wall seconds (run set-up included) | $(field "$out/eval-cpu.json" seconds) | $(field "$out/eval-dev.json" seconds) |"
	echo
	echo "Greedy completions identical on both: **$same of $rows**."
	echo
	echo "## bench sampler and learner, CPU"
	echo
	grep -v '^time=' "$out/bench-cpu.txt"
	echo
	echo "## bench sampler and learner, $dev"
	echo
	grep -v '^time=' "$out/bench-dev.txt"
} >"$out/gpu-check.md"
cat "$out/gpu-check.md"
if [ "$same" -lt "$rows" ]; then
	echo "gpu-check: $((rows - same)) of $rows greedy completions differ between CPU and $dev (see $out/completions-*.csv)" >&2
	[ "$cpu_only" = 1 ] && exit 1
fi
exit 0
