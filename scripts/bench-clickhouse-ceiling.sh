#!/usr/bin/env bash
# bench-clickhouse-ceiling.sh: what the ClickHouse server alone spends to
# store wsgrpo's 512-token trajectories, fed by its own clickhouse-client,
# without any wsgrpo code in the path.
#
#   scripts/bench-clickhouse-ceiling.sh [DATA_PARENT [PARALLEL]]
#
# It starts /usr/sbin/clickhouse-server (Debian 18.16, as the tests do: the
# config tracelog/chtest writes, MALLOC_CONF as chtest sets it) with its data
# under DATA_PARENT (default /tmp; /dev/shm for tmpfs), creates the
# trajectories table from schemas/ddl, generates 64 Native files of 4,096
# rows shaped like tracelog.SyntheticRows (512 token ids below 32,000, 512
# float32 logprobs, a 128-word completion, 1 to 8 steps; about 4.8 KB per
# row) once under $CEILING_FILES (default /dev/shm/wsgrpo-ceiling), then
# inserts them with PARALLEL (default 4) concurrent clickhouse-client
# loops, one INSERT per file, each sorted by the table key, as wsgrpo's
# server store sends them. It prints rows/s and the server process's CPU
# time per row (all threads, from /proc) while the inserts ran, and for the
# merges that run on after the last insert (waited for until system.merges
# is empty). On a machine with C cores, C divided by the sum of the two is
# the most rows/s this server can store, whatever the client.
set -euo pipefail

parent="${1:-/tmp}"
par="${2:-4}"
port="${CEILING_PORT:-19107}"
files="${CEILING_FILES:-/dev/shm/wsgrpo-ceiling}"
root="$(cd "$(dirname "$0")/.." && pwd)"
server=/usr/sbin/clickhouse-server
[ -x "$server" ] || { echo "ceiling: $server not found: run scripts/setup.sh --clickhouse" >&2; exit 1; }
command -v clickhouse-client >/dev/null || { echo "ceiling: clickhouse-client not found: apt-get install clickhouse-client" >&2; exit 1; }

dir="$(mktemp -d "$parent/wsgrpo-ceiling-XXXXXX")"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$dir/data" "$dir/tmp"
cat > "$dir/config.xml" <<X
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/err.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host><tcp_port>$port</tcp_port>
  <path>$dir/data/</path><tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path><format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config><default_profile>default</default_profile><default_database>default</default_database>
  <timezone>UTC</timezone><mark_cache_size>268435456</mark_cache_size><max_concurrent_queries>100</max_concurrent_queries>
</yandex>
X
cat > "$dir/users.xml" <<X
<?xml version="1.0"?>
<yandex><profiles><default></default></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default></default></quotas></yandex>
X
(cd "$dir" && MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 exec "$server" --config-file="$dir/config.xml" >/dev/null 2>&1) &
pid=$!
ch() { clickhouse-client --port "$port" "$@"; }
for _ in $(seq 200); do ch -q "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
ch -q "SELECT 1" >/dev/null || { echo "ceiling: server did not start, see $dir/err.log" >&2; exit 1; }

# The table as the migrations leave it (0001, then 0003's columns).
ch --multiquery < "$root/schemas/ddl/0001_trajectories.sql"
grep '^ALTER TABLE' "$root/schemas/ddl/0003_replay_columns.sql" | while read -r stmt; do ch -q "${stmt%;}"; done

mkdir -p "$files"
for k in $(seq 0 63); do
  [ -s "$files/$k.native" ] && continue
  ch -q "SELECT
    'r$k' AS run_id, toInt64(intDiv(number, 64)) AS step, toInt64(0) AS policy_version,
    concat('t', toString(100000000 + number)) AS trajectory_id, concat('g', toString(intDiv(number, 8))) AS group_id,
    concat('p', toString(number % 8)) AS prompt_id, toInt32(number % 8) AS sample_index, 'arith' AS task,
    concat(toString(rand() % 1000), '+', toString(rand(1) % 1000), '=') AS prompt,
    arrayStringConcat(arrayMap(x -> ['so ','then ','add ','carry ','the ','sum ','is ','we ','check ','step '][rand(x) % 10 + 1], range(128))) AS completion,
    arrayMap(x -> toInt32(rand(x + number) % 32000), range(512)) AS completion_token_ids, toUInt32(512) AS completion_tokens,
    toUInt32(1 + number % 8) AS steps, 'eos' AS finish_reason, toString(rand() % 2000) AS extracted_answer, toUInt8(rand() % 2) AS correct,
    toFloat32(1) AS terminal_reward, arrayMap(x -> toFloat32(rand(x) / 4294967295.0 - 0.5), range(1 + number % 8)) AS step_rewards,
    toFloat32(rand() / 4294967295.0) AS shaped_reward, toFloat32(rand(2) / 4294967295.0) AS advantage, 'ws' AS shaper,
    toFloat64(-700) AS sampler_logprob_sum, toFloat64(rand() % 100) AS sample_ms, toFloat64(1) AS verify_ms, toFloat64(3) AS label_ms,
    toUInt8(0) AS replayed, toDateTime('2026-01-01 00:00:00', 'UTC') AS created, toUInt64(1) AS inserted,
    toUInt8(1) AS labeled, '' AS reference_answer, arrayMap(x -> toInt32(rand(x) % 32000), range(8)) AS prompt_token_ids,
    arrayMap(x -> toFloat32(-3 * rand(x + number * 7) / 4294967295.0), range(512)) AS token_logprobs,
    arrayMap(x -> toInt32((x + 1) * 64), range(1 + number % 8)) AS step_ends,
    arrayMap(x -> toFloat32(rand(x) / 4294967295.0), range(2 + number % 8)) AS step_scores,
    arrayMap(x -> toFloat32(rand(x) / 4294967295.0), range(1 + number % 8)) AS step_advantages, toInt64(0) AS created_ms
    FROM numbers(4096) ORDER BY run_id, trajectory_id FORMAT Native" > "$files/$k.native.part"
  mv "$files/$k.native.part" "$files/$k.native"
done

cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }   # clock ticks
rows=$((64 * 4096))
s0=$(cpu); t0=$(date +%s.%N)
for p in $(seq 0 $((par - 1))); do
  ( for k in $(seq "$p" "$par" 63); do ch -q "INSERT INTO trajectories FORMAT Native" < "$files/$k.native"; done ) &
done
wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null || true
t1=$(date +%s.%N); s1=$(cpu)
for _ in $(seq 600); do [ "$(ch -q 'SELECT count() FROM system.merges')" = 0 ] && break; sleep 0.1; done
s2=$(cpu)
got=$(ch -q "SELECT count() FROM trajectories")
[ "$got" = "$rows" ] || { echo "ceiling: table holds $got rows, want $rows" >&2; exit 1; }
tick=$(getconf CLK_TCK)
awk -v r="$rows" -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v s2="$s2" -v tick="$tick" -v d="$parent" -v p="$par" 'BEGIN {
  printf "data under %s, %d clients: %.0f rows/s; server CPU %.1f µs/row while inserting, %.1f µs/row merging after\n",
    d, p, r / (t1 - t0), (s1 - s0) / tick * 1e6 / r, (s2 - s1) / tick * 1e6 / r }'
