#!/usr/bin/env bash
# chaos.sh: hostile-but-plausible inputs and faults against bin/wsgrpo (make chaos;
# issue #13): malformed configs and flags, run ids that point outside the runs,
# Parquet files that are not exports, --where injection attempts, wire payloads
# of the wrong schema version, two processes on one run directory, a full disk,
# huge sizes, SQL that writes or holds two statements, SIGKILLs of the logger,
# of the ClickHouse server and of the whole process.
#
#   scripts/chaos.sh            every case
#   scripts/chaos.sh PATTERN    the cases whose name matches the extended regexp
#   scripts/chaos.sh --list     list the cases
#
# Each case runs in its own temporary directory (the command's working directory
# is <case>/a/b/work, so that ../../ stays inside the case) with a timeout, and
# passes when the command ends as expected (exit code; a message that names the
# problem), prints no Go panic trace, writes nothing outside its work directory,
# and loses no row (CHAOS_KEEP=1 keeps every case's directory). It prints PASS, FAIL or SKIP (with the reason) per case and
# "tried N, passed P, failed F"; it exits 1 if any case failed. A failed case's
# directory is kept and named. Needs: go, and `make setup` (chDB); the
# ClickHouse case needs clickhouse-server (make setup-test), the full-disk cases
# a tmpfs mount (root).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)
GO=${GO:-go}
export WSGRPO_HOME=${WSGRPO_HOME:-$HOME/.cache/wsgrpo}
TIMEOUT=${CHAOS_TIMEOUT:-90} # seconds one command may take
W=$REPO/bin/wsgrpo
WIRE=$REPO/bin/chaos-wire

# ---------------------------------------------------------------- helpers

# fail MSG: the case fails with MSG (the caller returns 1).
fail() { echo "FAILED: $*"; }

# skip REASON: the case cannot run here.
skip() {
	echo "$*" >"$CASE_ROOT/skip"
	return 0
}

# w ARGS...: run wsgrpo with the case's timeout; its output goes to out.txt,
# its exit code to $RC.
w() {
	RC=0
	local quiet=(--log-level warn)
	case " $* " in *" --log-level "*) quiet=() ;; esac
	timeout -k 5 "$TIMEOUT" "$W" "$@" "${quiet[@]}" >out.txt 2>&1 || RC=$?
	cat out.txt >>"$CASE_ROOT/outputs.txt"
}

# no_panic FILE...: no Go panic trace in the files.
no_panic() {
	if grep -Eq '^panic:|goroutine [0-9]+ \[' "$@" 2>/dev/null; then
		fail "a Go panic trace in $*"
		grep -Em3 '^panic:|goroutine [0-9]+ \[' "$@"
		return 1
	fi
}

# expect WANT PATTERN ARGS...: run wsgrpo ARGS; WANT is ok (exit 0) or err
# (exit 1 or 2: an error, not a crash, a kill or a timeout); the output must
# match the extended regexp PATTERN (case-insensitive; "" for any).
expect() {
	local want=$1 pat=$2
	shift 2
	w "$@"
	no_panic out.txt || return 1
	case $want in
	ok) if [ "$RC" -ne 0 ]; then
		fail "wsgrpo $* exited $RC; want 0"
		tail -5 out.txt
		return 1
	fi ;;
	err) if [ "$RC" -ne 1 ] && [ "$RC" -ne 2 ]; then
		fail "wsgrpo $* exited $RC; want an error exit (1 or 2; 124 is a timeout)"
		tail -5 out.txt
		return 1
	fi ;;
	esac
	if [ -n "$pat" ] && ! grep -Eiq -- "$pat" out.txt; then
		fail "the output of wsgrpo $* does not match /$pat/:"
		tail -5 out.txt
		return 1
	fi
}

# rows RUN: prints the run's rows and distinct trajectory ids in the
# de-duplicated view ("200 200").
rows() {
	timeout -k 5 "$TIMEOUT" "$W" sql --run "$1" --format csv --log-level warn \
		"SELECT count(), uniqExact(trajectory_id) FROM trajectories_dedup" 2>&1 | tail -1 | tr ',' ' '
}

# want_rows RUN N: RUN's log holds N rows, each once.
want_rows() {
	local got
	got=$(rows "$1")
	if [ "$got" != "$2 $2" ]; then
		fail "run $1: rows, distinct ids = $got; want $2 $2"
		return 1
	fi
}

# start NAME ARGS...: run wsgrpo ARGS in the background (output NAME.out);
# its pid goes to $PID and to the case's list, killed when the case ends.
start() {
	local name=$1
	shift
	"$W" "$@" >"$name.out" 2>&1 &
	PID=$!
	echo "$PID" >>"$CASE_ROOT/pids"
}

# running NAME ARGS...: start NAME (a run with --progress) and wait until
# its progress bar shows rows arrived.
running() {
	start "$@"
	wait_for 60 progressed "$1.out" || {
		fail "the $1 run made no progress"
		return 1
	}
}

# stop PID: SIGTERM a background process the case started and reap it.
stop() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# kill9 PID: SIGKILL a background process the case started and reap it.
kill9() {
	kill -KILL "$1"
	wait "$1" 2>/dev/null
	return 0
}

# absent FILE: the command wrote no FILE.
absent() {
	[ ! -e "$1" ] || {
		fail "wrote $1"
		return 1
	}
}

# only DIR ENTRY: DIR still holds ENTRY and nothing else.
only() {
	[ "$(ls -A "$1")" = "$2" ] || {
		fail "wrote into $1: $(ls -A "$1")"
		return 1
	}
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_for() {
	local n=$(($1 * 5))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

# progressed FILE: the --progress bar in FILE shows rows arrived.
progressed() { grep -Eq '\(([1-9][0-9]*)/[0-9]+' "$1" 2>/dev/null; }

# free_port: a TCP port free on the loopback interface a moment ago.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 30000))
		if ! listening "$p"; then
			echo "$p"
			return
		fi
	done
	echo 0
}

# need_nats: the case needs a nats-server binary (returns 1 having skipped
# the case when there is none: the caller returns 0).
need_nats() {
	[ -n "$NATS" ] && return 0
	skip "no nats-server binary"
	return 1
}

# nats_up: a nats-server process on a free port with JetStream stored in
# ./js; its URL goes to $URL.
nats_up() {
	local port dir=$PWD/js
	port=$(free_port)
	URL=nats://127.0.0.1:$port
	"$NATS" -a 127.0.0.1 -p "$port" -js -sd "$dir" >"$dir.log" 2>&1 &
	NATS_PID=$!
	echo "$NATS_PID" >>"$CASE_ROOT/pids"
	wait_for 30 listening "$port" || {
		fail "nats-server did not start"
		return 1
	}
}

# listening PORT: something accepts connections on 127.0.0.1:PORT.
listening() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# drained URL RUN CONSUMER: the consumer of RUN's labeled stream has
# acknowledged every batch.
drained() { [ "$("$WIRE" --nats "$1" --run "$2" --pending "$3" 2>/dev/null)" = 0 ]; }

# dead_lettered URL RUN: RUN has an invalid-payload dead letter.
dead_lettered() { "$W" dlq list --nats "$1" --run "$2" --log-level warn 2>&1 | grep -q invalid-payload; }

# ch_ready DSN: the ClickHouse server answers a query.
ch_ready() { "$W" sql --clickhouse-dsn "$1" --log-level warn 'SELECT 1' >/dev/null 2>&1; }

# fixture: copies the shared run "data" (200 wiring rows, embedded log) and
# its Parquet export into the working directory.
fixture() {
	if [ ! -d "$ROOT/fixture/runs/data" ]; then
		mkdir -p "$ROOT/fixture"
		(
			cd "$ROOT/fixture" &&
				"$W" train --wiring --run data --batches 4 --rows 50 --log-level warn >fixture.out 2>&1 &&
				"$W" export --run data --out data.parquet --log-level warn >>fixture.out 2>&1 &&
				"$W" sql --run data --read-only=false --log-level warn \
					"SELECT 1 AS a, 'x' AS b INTO OUTFILE '$ROOT/fixture/other.parquet' FORMAT Parquet" >>fixture.out 2>&1
		) || {
			cat "$ROOT/fixture/fixture.out"
			return 1
		}
	fi
	cp -a "$ROOT/fixture/runs" "$ROOT/fixture/data.parquet" "$ROOT/fixture/other.parquet" .
}

# on_data WANT PATTERN ARGS...: expect (see there) in a working directory
# holding the fixture.
on_data() {
	fixture || return 1
	expect "$@"
}

# keeps_data PATTERN ARGS...: with the fixture, wsgrpo ARGS fails with a
# message matching PATTERN, and the run "data" still holds its 200 rows.
keeps_data() {
	on_data err "$@" || return 1
	want_rows data 200
}

# tmpfs DIR SIZE: mount a tmpfs of SIZE at DIR (unmounted when the case
# ends); fails, having skipped the case, when this machine does not allow
# it (the caller returns 0).
tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null || {
		skip "cannot mount a tmpfs here (not root, or no mount permission)"
		return 1
	}
	(cd "$1" && pwd) >>"$CASE_ROOT/mounts"
}

# --------------------------------------------------- 1: one owner per run

c_dual_train_refused() {
	running first train --wiring --run dual --batches 4000 --progress || return 1
	expect err "in use.*held by pid $PID" train --wiring --run dual --batches 10 || return 1
	grep -q "wsgrpo train --wiring --run dual --batches 4000" out.txt || {
		fail "the refusal does not name the holder's command"
		return 1
	}
	stop "$PID"
	no_panic first.out
}

c_dual_sql_in_use() {
	running first train --wiring --run dual --batches 4000 --progress || return 1
	expect err "in use.*held by pid $PID" sql --run dual "SELECT count() FROM trajectories" || return 1
	if grep -qi "libchdb" out.txt; then
		fail "blames libchdb for a run in use"
		return 1
	fi
	stop "$PID"
}

c_dual_stage_logger_refused() {
	running first train --wiring --run dual --batches 4000 --progress || return 1
	expect err "in use.*held by pid $PID" stage logger --run dual --nats nats://127.0.0.1:4222 || return 1
	stop "$PID"
}

c_dual_stale_lock_taken_over() {
	running first train --wiring --run dual --batches 300 --progress || return 1
	kill9 "$PID"
	expect ok "19200 unique of 19200" train --wiring --run dual --batches 300 || return 1
	want_rows dual 19200
}

c_dual_export_in_use() {
	running first train --wiring --run dual --batches 4000 --progress || return 1
	expect err "in use" export --run dual --out dual.parquet || return 1
	absent dual.parquet || return 1
	stop "$PID"
}

# ---------------------------------------------------- 2: run ids confined

c_run_dotdot_etc() {
	mkdir -p ../../etc && echo keep >../../etc/passwd
	expect err "not a wsgrpo run directory" train --wiring --run ../../etc --batches 1 --rows 1 || return 1
	only ../../etc passwd
}

c_run_absolute_dir() {
	mkdir -p ../plain && echo keep >../plain/file
	expect err "not a wsgrpo run directory" train --wiring --run "$(cd ../plain && pwd)" --batches 1 --rows 1 || return 1
	only ../plain file
}

c_run_name_of_plain_dir() {
	mkdir docs && echo keep >docs/README
	expect ok "64 unique of 64" train --wiring --run docs --batches 1 || return 1
	only docs README || return 1
	[ -d runs/docs/tracelog ] || {
		fail "the run is not in runs/docs"
		return 1
	}
}

c_run_sql_dotdot() {
	expect err "not a wsgrpo run directory|no trajectory log" sql --run ../.. "SELECT 1"
}

c_run_invalid_chars() { expect err "invalid name" train --wiring --run 'a b;rm' --batches 1 --rows 1; }
c_run_empty() { expect err "invalid name|must have 1 to 64" train --wiring --run '' --batches 1 --rows 1; }
c_run_too_long() { expect err "invalid name|must have 1 to 64" train --wiring --run "$(printf 'x%.0s' $(seq 80))" --batches 1 --rows 1; }

c_run_dir_path_accepted() { on_data ok "^ *200 *$" sql --run runs/data "SELECT count() FROM trajectories_dedup"; }

c_dir_is_a_file() {
	echo x >afile
	expect err "not a directory" train --wiring --dir afile --batches 1 --rows 1
}

# ------------------------------------------------------------ 3: full disk

c_disk_full_wiring() {
	tmpfs small 20m || return 0
	expect err "out of storage space|no space left" train --wiring --dir small/run --batches 2000 --timeout 60s || return 1
	grep -Eiq "full|free" out.txt || {
		fail "the message does not say what is full"
		return 1
	}
}

c_disk_full_report_no_partial_png() {
	fixture || return 1
	tmpfs small 20m || return 0
	dd if=/dev/zero of=small/fill bs=1K count=$((20 * 1024 - 40)) 2>/dev/null
	expect err "no space left" report --run data --out small/report || return 1
	local f
	for f in small/report/*.png; do
		[ -e "$f" ] || continue
		tail -c 12 "$f" | grep -q IEND || {
			fail "$f is truncated"
			return 1
		}
	done
	local left
	left=$(find small/report -name '*.tmp')
	if [ -n "$left" ]; then
		fail "temporary files left in the report directory: $left"
		return 1
	fi
}

c_disk_full_export() {
	fixture || return 1
	tmpfs small 1m || return 0
	dd if=/dev/zero of=small/fill bs=1K count=1020 2>/dev/null
	expect err "no space left" export --run data --out small/data.parquet || return 1
	local left
	left=$(find small -mindepth 1 ! -name fill)
	if [ -n "$left" ]; then
		fail "left behind: $left"
		return 1
	fi
}

# ------------------------------------------------------- 4: bounded inputs

c_rows_huge() { expect err "max_payload|more than one NATS message" train --wiring --batches 1 --rows 100000000; }
c_batches_huge() { expect err "memory|rows a wiring run counts" train --wiring --batches 1000000 --rows 1000; }
c_batches_overflow() { expect err "rows a wiring run counts" train --wiring --batches 100000000 --rows 64; }
c_batches_zero() { expect err "at least 1" train --wiring --batches 0; }
c_rows_negative() { expect err "at least 1" train --wiring --rows -5; }
c_ort_threads_negative() { expect err "ort.threads -1" train --wiring --ort-threads -1; }
c_ort_threads_huge() { expect err "ort.threads" train --wiring --ort-threads 100000; }
c_fetch_size_zero() { expect err "fetch_size" train --wiring --runner-fetch-size 0; }
c_ack_wait_negative() { expect err "ack_wait" train --wiring --runner-ack-wait -1s; }
c_concurrency_huge() { expect err "runner.concurrency" train --wiring --runner-concurrency 100000; }
c_max_deliver_zero() { expect err "max_deliver" train --wiring --runner-max-deliver 0; }
c_env_negative() { WSGRPO_RUNNER_CONCURRENCY=-3 expect err "runner.concurrency -3" train --wiring --batches 1 --rows 1; }
c_listen_bad_port() { expect err "port must be" train --wiring --listen 127.0.0.1:99999; }
c_timeout_negative() { expect err "timeout" train --timeout -1s; }

# ------------------------------------------------- configuration and flags

c_config_missing() { expect err "nope.yaml" train --wiring --config nope.yaml; }

# bad_config TEXT PATTERN: a wiring run with bad.yaml holding TEXT (printf
# escapes) as its config fails with a message matching PATTERN.
bad_config() {
	printf '%b' "$1" >bad.yaml
	expect err "$2" train --wiring --config bad.yaml
}
c_config_yaml_syntax() { bad_config 'run: [\n' "bad.yaml.*yaml"; }
c_config_unknown_key() { bad_config 'trian:\n  steps: 3\n' "unknown keys trian.steps"; }
c_config_wrong_type() { bad_config 'train:\n  steps: many\n' "train.steps"; }
c_config_negative_value() { bad_config 'runner:\n  concurrency: -1\n' "runner.concurrency -1"; }

c_config_is_a_directory() {
	mkdir conf.yaml
	expect err "conf.yaml" train --wiring --config conf.yaml
}

c_config_binary_garbage() {
	head -c 4096 /dev/urandom >bad.yaml
	expect err "bad.yaml" train --wiring --config bad.yaml
}

c_flag_unknown_command() { expect err "unknown command" tran; }
c_flag_unknown_flag() { expect err "unknown flag: --bogus" train --wiring --bogus; }
c_flag_log_level() { expect err "log.level" train --wiring --log-level loud; }
c_resume_and_force() { expect err "exclude each other" train --resume --force; }
c_resume_missing() { expect err "no run directory" train --resume --run nothere; }

c_nats_unreachable() {
	expect err "connect to NATS|no servers" train --wiring --nats nats://127.0.0.1:1 --no-log --batches 1 --rows 1 --timeout 10s
}

c_clickhouse_unreachable() {
	expect err "cannot reach the ClickHouse server" train --wiring --clickhouse-dsn clickhouse://127.0.0.1:1/default --batches 1 --rows 1
}

# ---------------------------------------------------------- Parquet files

c_import_missing() { expect err "no such file" import nothere.parquet; }

c_import_empty() {
	: >empty.parquet
	expect err "not a trajectory-log Parquet file" import empty.parquet
}

c_import_text() {
	echo "hello, not parquet" >text.parquet
	expect err "not a trajectory-log Parquet file" import text.parquet
}

c_import_truncated_changes_nothing() {
	fixture || return 1
	head -c 3000 data.parquet >trunc.parquet
	expect err "not a trajectory-log Parquet file" import trunc.parquet --dir runs/data || return 1
	want_rows runs/data 200
}

c_import_other_schema() {
	fixture || return 1
	expect err "parquet|column|schema" import other.parquet --dir imported || return 1
	if [ -d imported/tracelog ] && [ "$(rows imported)" != "0 0" ]; then
		fail "imported rows from a file that is not an export"
		return 1
	fi
}

c_import_other_run_refused() { on_data err "holds another run" import data.parquet --run other; }

c_import_twice_no_duplicates() {
	fixture || return 1
	expect ok "imported 200 rows" import data.parquet --dir copy || return 1
	expect ok "imported 200 rows" import data.parquet --dir copy || return 1
	want_rows copy 200
}

c_export_missing_dir() { on_data err "does not exist" export --run data --out nodir/x.parquet; }

c_export_keeps_existing() {
	echo keep >keep.parquet
	on_data err "exists|--force" export --run data --out keep.parquet || return 1
	[ "$(cat keep.parquet)" = keep ] || {
		fail "overwrote keep.parquet"
		return 1
	}
}

# ------------------------------------------------------ --where injection

where_refused() { keeps_data "--where refused" replay --run data --to learner --into data2 --where "$1"; }
c_where_semicolon_drop() { where_refused "1=1; DROP TABLE trajectories"; }
c_where_paren_escape() { where_refused "1=1) OR (1=1"; }
c_where_union() { where_refused "correct = 1 UNION ALL SELECT * FROM system.users"; }
c_where_line_comment() { where_refused "1=1 -- "; }
c_where_block_comment() { where_refused "'a' = 'a' /* x */"; }
c_where_subquery() { where_refused "run_id IN (SELECT run_id FROM trajectories)"; }
c_where_file_function() { where_refused "file('/etc/passwd') != ''"; }
c_where_backslash_semicolon() { where_refused "run_id = 'x\\\\'; DROP TABLE trajectories; --'"; }

# where_literal EXPR: EXPR's quotes stay one string literal that matches
# no row (the validator reads escapes as ClickHouse does).
where_literal() { keeps_data "nothing to replay" replay --run data --to learner --into data2 --where "$1"; }
c_where_doubled_quote() { where_literal "run_id = 'x'' OR ''1''=''1'"; }
c_where_backslash_quote() { where_literal "run_id = 'a\\' OR 1=1 OR run_id = \\'b'"; }

# ----------------------------------------------- wire payloads (dead letters)

# wire PAYLOAD: publish a hostile prompt payload to a run served by a
# nats-server process with a pass-through sampler; it must be
# dead-lettered as invalid-payload with its reason, and the stage must live.
wire() {
	need_nats || return 0
	nats_up || return 1
	local url=$URL
	timeout 60 "$WIRE" --nats "$url" --run wire --payload "$1" >wire.out 2>&1 || {
		fail "publish: $(cat wire.out)"
		return 1
	}
	start stage stage passthrough --as sampler --nats "$url" --run wire
	local stage=$PID
	wait_for 60 dead_lettered "$url" wire || {
		fail "no invalid-payload dead letter"
		"$W" dlq list --nats "$url" --run wire 2>&1 | tail -5
		tail -5 stage.out
		return 1
	}
	expect ok "$2" dlq list --nats "$url" --run wire || return 1
	kill -0 "$stage" 2>/dev/null || {
		fail "the stage exited: $(tail -3 stage.out)"
		return 1
	}
	stop "$stage"
	no_panic stage.out
}
c_wire_newer_schema_version() { wire version "version"; }
c_wire_garbage() { wire garbage "invalid-payload"; }
c_wire_empty_body() { wire empty "invalid-payload"; }
c_wire_wrong_kind() { wire kind "invalid-payload.*(kind|rollout)"; }
c_wire_missing_columns() { wire columns "invalid-payload"; }

# ---------------------------------------------------- 5: one SQL statement

c_sql_two_statements() { keeps_data "not exactly one SQL statement" sql --run data "SELECT 1; DROP TABLE trajectories"; }

c_sql_two_statements_writable() { keeps_data "not exactly one SQL statement" sql --run data --read-only=false "SELECT 1; DROP TABLE trajectories"; }

c_sql_drop_read_only() { keeps_data "read-only" sql --run data "DROP TABLE trajectories"; }

c_sql_insert_read_only() { keeps_data "read-only" sql --run data "INSERT INTO trajectories (run_id, trajectory_id) VALUES ('data', 'x')"; }

c_sql_file_function_read_only() {
	on_data err "read-only" sql --run data "SELECT * FROM file('/etc/passwd', 'LineAsString')"
}

c_sql_into_outfile() {
	on_data err "INTO OUTFILE" sql --run data "SELECT 1 INTO OUTFILE 'out.csv'" || return 1
	absent out.csv
}

c_sql_trailing_semicolon() {
	on_data ok "^ *200 *$" sql --run data "SELECT count() FROM trajectories_dedup;"
}

c_sql_semicolon_in_literal() { on_data ok "a;b" sql --run data "SELECT 'a;b' AS s"; }

c_sql_missing_run() { expect err "no trajectory log" sql --run nope "SELECT 1"; }

# ------------------------------------------------------------------ kills

c_kill_whole_process() {
	running first train --wiring --run k --batches 600 --progress || return 1
	kill9 "$PID"
	expect ok "38400 unique of 38400" train --wiring --run k --batches 600 || return 1
	want_rows k 38400
}

c_kill_logger_stage() {
	need_nats || return 0
	nats_up || return 1
	local url=$URL
	# The wiring run's pass-through stages in one process (--no-log), the
	# logger in another, killed once rows flow and replaced.
	start driver train --wiring --run lg --nats "$url" --no-log --batches 1500 --progress --dir drv
	local driver=$PID
	start logger1 stage logger --nats "$url" --run lg --dir lglog
	local logger=$PID
	wait_for 60 progressed driver.out || return 1
	wait_for 60 test -d lglog/tracelog || return 1
	kill9 "$logger"
	start logger2 stage logger --nats "$url" --run lg --dir lglog
	logger=$PID
	wait "$driver" || {
		fail "the wiring run failed: $(tail -3 driver.out)"
		return 1
	}
	wait_for 120 drained "$url" lg logger || {
		fail "the logger never acknowledged every batch"
		return 1
	}
	kill "$logger"
	wait "$logger" || {
		fail "the logger exited $? on SIGTERM"
		return 1
	}
	no_panic driver.out logger1.out logger2.out || return 1
	want_rows lglog 96000
}

c_kill_clickhouse_server() {
	command -v clickhouse-server >/dev/null || {
		skip "no clickhouse-server (make setup-test)"
		return 0
	}
	local port dir
	port=$(free_port)
	dir=$PWD/ch
	mkdir -p "$dir"
	cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/err.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$port</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
EOF
	cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
EOF
	local dsn=clickhouse://127.0.0.1:$port/default
	ch_start() {
		(cd "$dir" && exec clickhouse-server --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1) &
		CH_PID=$!
		echo "$CH_PID" >>"$CASE_ROOT/pids"
		wait_for 60 ch_ready "$dsn"
	}
	ch_start || {
		fail "clickhouse-server did not start: $(tail -3 "$dir/err.log" 2>/dev/null)"
		return 1
	}
	running first train --wiring --run chk --clickhouse-dsn "$dsn" --batches 600 --progress --timeout 20s || return 1
	kill9 "$CH_PID"
	# The run cannot log: it must fail with a message, not hang or crash.
	wait "$PID"
	local rc=$?
	no_panic first.out || return 1
	if [ "$rc" -eq 0 ]; then
		# It may have finished before the kill landed.
		grep -q "38400 unique of 38400" first.out || {
			fail "exited 0 without every row"
			return 1
		}
	elif ! tr '\r' '\n' <first.out | grep '^wsgrpo:' | grep -Eiq "ClickHouse server"; then
		fail "exited $rc without naming the ClickHouse server: $(tr '\r' '\n' <first.out | grep '^wsgrpo:')"
		return 1
	fi
	ch_start || {
		fail "clickhouse-server did not restart"
		return 1
	}
	# Run again (the messages of the killed run are still in its stream):
	# every row once.
	expect ok "38400 unique of 38400" train --wiring --run chk --clickhouse-dsn "$dsn" --batches 600 || return 1
	local got
	got=$(timeout 60 "$W" sql --clickhouse-dsn "$dsn" --format csv --log-level warn \
		"SELECT count(), uniqExact(trajectory_id) FROM trajectories_dedup WHERE run_id = 'chk'" 2>&1 | tail -1 | tr ',' ' ')
	[ "$got" = "38400 38400" ] || {
		fail "the log holds $got (rows, distinct ids); want 38400 38400"
		return 1
	}
	stop "$CH_PID"
}

# ------------------------------------------------------------------ runner

# The cases, in the order they run.
mapfile -t CASES < <(declare -F | awk '{print $3}' | grep '^c_' | sed 's/^c_//')

if [ "${1:-}" = --list ]; then
	printf '%s\n' "${CASES[@]}"
	exit 0
fi
PATTERN=${1:-.}

echo "chaos: building bin/wsgrpo and bin/chaos-wire"
"$GO" build -o "$W" ./cmd/wsgrpo || exit 1
"$GO" build -o "$WIRE" ./scripts/chaos/wire || exit 1
NATS=${WSGRPO_NATS_SERVER:-}
if [ -z "$NATS" ]; then
	version=$("$GO" list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
	NATS=$WSGRPO_HOME/bin/nats-server-$version
	if [ ! -x "$NATS" ]; then
		mkdir -p "$WSGRPO_HOME/bin"
		"$GO" build -o "$NATS.$$.tmp" github.com/nats-io/nats-server/v2 && mv "$NATS.$$.tmp" "$NATS" || NATS=
	fi
fi

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/wsgrpo-chaos.XXXXXX")
before=$(git status --porcelain 2>/dev/null)

# end_case: kill what the case started (by pid) and unmount its tmpfs.
end_case() {
	local pid m
	if [ -f "$CASE_ROOT/pids" ]; then
		while read -r pid; do
			kill -KILL "$pid" 2>/dev/null
		done <"$CASE_ROOT/pids"
	fi
	if [ -f "$CASE_ROOT/mounts" ]; then
		while read -r m; do
			umount "$m" 2>/dev/null
		done <"$CASE_ROOT/mounts"
	fi
}
trap 'end_case 2>/dev/null' EXIT

tried=0 passed=0 failed=0 skipped=0
failures=()
for name in "${CASES[@]}"; do
	[[ $name =~ $PATTERN ]] || continue
	CASE_ROOT=$ROOT/$name
	work=$CASE_ROOT/a/b/work
	mkdir -p "$work"
	started=$SECONDS
	(cd "$work" && "c_$name") >"$CASE_ROOT/log" 2>&1
	status=$?
	end_case
	# Nothing may be written outside the work directory.
	outside=$(find "$CASE_ROOT" -mindepth 1 | grep -v -x -F -e "$CASE_ROOT/log" -e "$CASE_ROOT/pids" \
		-e "$CASE_ROOT/mounts" -e "$CASE_ROOT/skip" -e "$CASE_ROOT/outputs.txt" -e "$CASE_ROOT/a" -e "$CASE_ROOT/a/b" |
		grep -v -e "^$work\(/\|\$\)" -e "^$CASE_ROOT/a/etc\(/passwd\)\?\$" -e "^$CASE_ROOT/a/b/plain\(/file\)\?\$")
	if [ $status -eq 0 ] && [ -n "$outside" ]; then
		echo "FAILED: wrote outside the work directory: $outside" >>"$CASE_ROOT/log"
		status=1
	fi
	if [ $status -eq 0 ] && ! no_panic "$CASE_ROOT/outputs.txt" >>"$CASE_ROOT/log"; then
		status=1
	fi
	secs=$((SECONDS - started))
	if [ -f "$CASE_ROOT/skip" ] && [ $status -eq 0 ]; then
		skipped=$((skipped + 1))
		printf 'SKIP  %-40s %3ds  %s\n' "$name" "$secs" "$(cat "$CASE_ROOT/skip")"
		continue
	fi
	tried=$((tried + 1))
	if [ $status -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  %-40s %3ds\n' "$name" "$secs"
		[ -n "${CHAOS_KEEP:-}" ] || rm -rf "$CASE_ROOT"
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL  %-40s %3ds  (%s)\n' "$name" "$secs" "$CASE_ROOT"
		sed 's/^/      /' "$CASE_ROOT/log" | tail -12
	fi
done

if [ "$(git status --porcelain 2>/dev/null)" != "$before" ]; then
	echo "FAIL  the repository's working tree changed during the cases (a case wrote into it, or it was edited meanwhile):"
	git status --porcelain
	failed=$((failed + 1))
	failures+=("repository-unchanged")
fi
echo "chaos: tried $tried, passed $passed, failed $failed (skipped $skipped)"
if [ "$failed" -gt 0 ]; then
	echo "chaos: failed: ${failures[*]}; their directories are kept under $ROOT"
	exit 1
fi
if [ -n "${CHAOS_KEEP:-}" ]; then
	echo "chaos: the cases' directories are kept under $ROOT (CHAOS_KEEP)"
else
	rm -rf "$ROOT"
fi
