package replay_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/replay"
)

func TestValidateWhereAccepts(t *testing.T) {
	tests := []string{
		"step > 3",
		"correct = 1 AND completion_tokens >= 128",
		"task = 'arith' OR task IN ('gsm8k', 'math')",
		"NOT (finish_reason = 'length')",
		"completion LIKE '%carry%' AND lengthUTF8(prompt) < 400",
		"step BETWEEN 2 AND 5",
		"arrayExists(x -> x < 0, step_rewards)",
		"step_rewards[1] > 0.5e-1",
		"advantage != -1.5 AND shaped_reward <> 0x10",
		"completion = 'it''s \\' -- not a comment; /* nor this */ ? ) SELECT'",
		"if(correct = 1, completion_tokens, 0) > 10",
		"has(completion_token_ids, 42) AND sample_index % 2 = 0",
		"extracted_answer IS NOT NULL",
		"(((step = 1)))",
		"concat(task, '/', prompt_id) = 'arith/p1'",
	}
	for _, w := range tests {
		t.Run(w, func(t *testing.T) {
			if err := replay.ValidateWhere(w); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestValidateWhereRefuses(t *testing.T) {
	tests := []struct{ name, where, why string }{
		{"empty", "   ", "empty"},
		{"statement separator", "1; DROP TABLE trajectories", "character"},
		{"close below start", "1) OR (1", "unbalanced"},
		{"close below start, union", "1) UNION ALL SELECT * FROM trajectories WHERE (1", "unbalanced"},
		{"unclosed", "(step = 1", "unclosed"},
		{"mismatched brackets", "step_rewards[1) > 0", "unbalanced"},
		{"line comment", "step > 0 -- AND run_id = 'x'", "comment"},
		{"block comment", "step > 0 /* x */", "comment"},
		{"hash comment", "step > 0 # x", "character"},
		{"subquery", "step IN (SELECT step FROM trajectories)", "unknown name"},
		{"other table in IN", "run_id IN other_runs", "unknown name"},
		{"qualified name", "system.users", "character"},
		{"backquoted identifier", "`run_id` = 'x'", "character"},
		{"double-quoted identifier", "\"run_id\" = 'x'", "character"},
		{"dictionary read", "dictGet('d', 'a', toUInt64(1)) = 1", "function"},
		{"table function", "file('/etc/passwd') = ''", "function"},
		{"settings clause", "1 SETTINGS max_threads = 1", "unknown name"},
		{"format clause", "1 FORMAT TSV", "unknown name"},
		{"placeholder", "run_id = ?", "character"},
		{"query parameter", "step = {s:UInt8}", "character"},
		{"heredoc", "prompt = $$x$$", "character"},
		{"cast operator", "step::String = '1'", "character"},
		{"unterminated string", "task = 'abc", "unterminated"},
		{"escaped closing quote", "task = 'abc\\'", "unterminated"},
		{"reserved lambda parameter", "arrayExists(select -> 1, step_rewards)", "lambda"},
		{"column as lambda parameter", "arrayExists(step -> 1, step_rewards)", "lambda"},
		{"malformed number", "step = 1e-", "number"},
		{"number into comment", "step = 1e--1", "number"},
		{"unknown column", "password = ''", "unknown name"},
		{"column case", "STEP = 1", "unknown name"},
		{"too long", "step = 1" + strings.Repeat(" ", replay.MaxWhereLen), "limit"},
		{"non-ascii", "step = 1 ＯＲ 1", "character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := replay.ValidateWhere(tc.where)
			if !errors.Is(err, replay.ErrWhere) {
				t.Fatalf("err = %v, want ErrWhere", err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err = %q, want it to say %q", err, tc.why)
			}
		})
	}
}

func TestParseSteps(t *testing.T) {
	tests := []struct {
		in       string
		from, to int64
		set      bool
		err      bool
	}{
		{"", 0, 0, false, false},
		{"3", 3, 3, true, false},
		{"2..5", 2, 5, true, false},
		{"7..", 7, 1<<63 - 1, true, false},
		{"..4", 0, 4, true, false},
		{" 1 .. 2 ", 1, 2, true, false},
		{"..", 0, 0, false, true},
		{"5..2", 0, 0, false, true},
		{"-1..2", 0, 0, false, true},
		{"a..b", 0, 0, false, true},
		{"1..2..3", 0, 0, false, true},
		{"1.5", 0, 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, err := replay.ParseSteps(tc.in)
			if tc.err {
				if !errors.Is(err, replay.ErrSteps) {
					t.Fatalf("err = %v, want ErrSteps", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.From != tc.from || s.To != tc.to || s.Set != tc.set {
				t.Fatalf("got %+v", s)
			}
			if again, err := replay.ParseSteps(s.String()); err != nil || again != s {
				t.Fatalf("String %q parses to %+v, %v", s.String(), again, err)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	for _, tg := range replay.Targets() {
		got, err := replay.ParseTarget(string(tg))
		if err != nil || got != tg {
			t.Fatalf("%s: %v %v", tg, got, err)
		}
		if _, err := tg.Kind(); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"", "logger", "Learner", "sampler "} {
		if _, err := replay.ParseTarget(bad); !errors.Is(err, replay.ErrTarget) {
			t.Fatalf("%q: err = %v", bad, err)
		}
	}
}
