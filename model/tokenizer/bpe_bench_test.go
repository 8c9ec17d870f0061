package tokenizer

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// corpusTexts returns the reference corpus (only the strings of kind if
// not "") and its size in bytes.
func corpusTexts(tb testing.TB, dir, name, kind string) ([]string, int) {
	tb.Helper()
	var texts []string
	n := 0
	for _, r := range readEncodeRef(tb, dir, name) {
		if kind == "" || r.kind == kind {
			texts = append(texts, r.text)
			n += len(r.text)
		}
	}
	return texts, n
}

// encodeAll encodes every text and returns the number of ids.
func encodeAll(tok *BPE, texts []string) int {
	n := 0
	for _, s := range texts {
		n += len(tok.Encode(s))
	}
	return n
}

// BenchmarkBPEEncode encodes the reference corpus (24,000 strings of
// prose, arithmetic, code, Unicode and whitespace) per iteration.
func BenchmarkBPEEncode(b *testing.B) {
	dir := requireRef(b)
	for _, name := range []string{"qwen3", "llama3_1"} {
		b.Run(name, func(b *testing.B) {
			tok := loadRefModel(b, name)
			texts, n := corpusTexts(b, dir, name, "")
			b.SetBytes(int64(n))
			for b.Loop() {
				encodeAll(tok, texts)
			}
		})
	}
}

// BenchmarkBPEEncodeRegexp2 is BenchmarkBPEEncode/qwen3 with the
// pre-tokenizer run by regexp2 instead of the hand-written scanner.
func BenchmarkBPEEncodeRegexp2(b *testing.B) {
	dir := requireRef(b)
	tok := loadRefModel(b, "qwen3")
	useRegexp2(b, tok)
	texts, n := corpusTexts(b, dir, "qwen3", "")
	b.SetBytes(int64(n))
	for b.Loop() {
		encodeAll(tok, texts)
	}
}

// BenchmarkBPEDecode decodes the reference ids of the corpus.
func BenchmarkBPEDecode(b *testing.B) {
	dir := requireRef(b)
	tok := loadRefModel(b, "qwen3")
	refs := readEncodeRef(b, dir, "qwen3")
	n := 0
	for _, r := range refs {
		n += len(r.decodedAll)
	}
	b.SetBytes(int64(n))
	for b.Loop() {
		for _, r := range refs {
			tok.DecodeWithSpecial(r.ids)
		}
	}
}

// TestTokenizerSpeedVsJS times Go and the JS reference (node
// scripts/tokref/bench.mjs) encoding the same corpus in the same run:
// the first pass over a new tokenizer (empty caches) and the best of
// three. It is a measurement, run by `make bench-tokenizer`
// (WSGRPO_BENCH_TOKENIZER=1); the figures go to docs/BENCHMARKS.md.
func TestTokenizerSpeedVsJS(t *testing.T) {
	if os.Getenv("WSGRPO_BENCH_TOKENIZER") == "" {
		t.Skip("a measurement: run it with `make bench-tokenizer`")
	}
	dir := requireRef(t)
	const passes = 3
	for _, run := range []string{"qwen3", "llama3_1", "qwen3/prose", "llama3_1/prose"} {
		t.Run(run, func(t *testing.T) {
			name, kind, _ := strings.Cut(run, "/")
			texts, n := corpusTexts(t, dir, name, kind)
			start := time.Now()
			tok := loadRefModel(t, name)
			load := time.Since(start)
			goPasses := make([]float64, passes)
			for p := range passes {
				start := time.Now()
				encodeAll(tok, texts)
				goPasses[p] = time.Since(start).Seconds() * 1000
			}
			cmd := exec.Command("node", filepath.Join(tokrefHome(t), "bench.mjs"), dir, name, strconv.Itoa(passes), kind)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node bench.mjs: %v (run `make setup-test`)", err)
			}
			var js struct {
				Node     string    `json:"node"`
				Bytes    int       `json:"bytes"`
				LoadMs   float64   `json:"load_ms"`
				PassesMs []float64 `json:"passes_ms"`
			}
			if err := json.Unmarshal(out, &js); err != nil {
				t.Fatalf("node bench.mjs output %q: %v", out, err)
			}
			if js.Bytes != n || len(js.PassesMs) != passes {
				t.Fatalf("node timed %d bytes in %d passes, want %d in %d", js.Bytes, len(js.PassesMs), n, passes)
			}
			mbps := func(ms float64) float64 { return float64(n) / 1e6 / (ms / 1000) }
			goBest, jsBest := slices.Min(goPasses), slices.Min(js.PassesMs)
			t.Logf("%s: %d strings, %.2f MB; load Go %.0f ms, JS %.0f ms (node %s)", run, len(texts), float64(n)/1e6, load.Seconds()*1000, js.LoadMs, js.Node)
			t.Logf("%s: first pass Go %.1f MB/s, JS %.2f MB/s (%.1fx); best of %d Go %.1f MB/s, JS %.2f MB/s (%.1fx)",
				run, mbps(goPasses[0]), mbps(js.PassesMs[0]), js.PassesMs[0]/goPasses[0], passes, mbps(goBest), mbps(jsBest), jsBest/goBest)
		})
	}
}
