package dataset

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readString reads s with opts or fails the test on an unexpected error.
func readString(tb testing.TB, s string, opts Options) *Result {
	tb.Helper()
	res, err := Read(strings.NewReader(s), opts)
	if err != nil {
		tb.Fatalf("Read: %v", err)
	}
	if got := len(res.Records) + len(res.Bad) + res.Blank; got != res.Lines {
		tb.Fatalf("%d records + %d bad + %d blank != %d lines", len(res.Records), len(res.Bad), res.Blank, res.Lines)
	}
	return res
}

func TestRead(t *testing.T) {
	long := `{"prompt":"` + strings.Repeat("x", 200) + `","answer":"1"}`
	tests := []struct {
		name      string
		in        string
		opts      Options
		goodLines []int
		bad       map[int]error
		blank     int
	}{
		{"empty input", "", Options{}, nil, nil, 0},
		{"one line no newline", `{"prompt":"a","answer":"1"}`, Options{}, []int{1}, nil, 0},
		{"crlf", "{\"prompt\":\"a\",\"answer\":\"1\"}\r\n{\"prompt\":\"b\",\"answer\":\"2\"}\r\n", Options{}, []int{1, 2}, nil, 0},
		{"blank lines", "\n{\"prompt\":\"a\",\"answer\":\"1\"}\n  \n\t\n{\"prompt\":\"b\",\"answer\":\"2\"}\n\n", Options{}, []int{2, 5}, nil, 4},
		{
			"bad lines counted, load goes on",
			"{\"prompt\":\"a\",\"answer\":\"1\"}\nnot json\n{\"answer\":\"2\"}\n{\"prompt\":\"c\"}\n{\"prompt\":\"d\",\"answer\":\"w ####\"}\n{\"prompt\":\"e\",\"answer\":5}\n",
			Options{}, []int{1, 6}, map[int]error{2: ErrNotJSON, 3: ErrPrompt, 4: ErrAnswer, 5: ErrAnswer}, 0,
		},
		{
			"duplicate id",
			"{\"id\":\"x\",\"prompt\":\"a\",\"answer\":\"1\"}\n{\"id\":\"y\",\"prompt\":\"b\",\"answer\":\"1\"}\n{\"id\":\"x\",\"prompt\":\"c\",\"answer\":\"1\"}\n",
			Options{}, []int{1, 2}, map[int]error{3: ErrID}, 0,
		},
		{
			"long line skipped, next line read",
			`{"prompt":"a","answer":"1"}` + "\n" + long + "\n" + `{"prompt":"b","answer":"2"}` + "\n",
			Options{MaxLineBytes: 64}, []int{1, 3}, map[int]error{2: ErrLineTooLong}, 0,
		},
		{"long last line", `{"prompt":"a","answer":"1"}` + "\n" + long, Options{MaxLineBytes: 64}, []int{1}, map[int]error{2: ErrLineTooLong}, 0},
		{"line at the limit", strings.Repeat(" ", 37) + `{"prompt":"a","answer":"1"}` + "\r\n", Options{MaxLineBytes: 64}, []int{1}, nil, 0},
		{"line one past the limit", strings.Repeat(" ", 38) + `{"prompt":"a","answer":"1"}` + "\n", Options{MaxLineBytes: 64}, nil, map[int]error{1: ErrLineTooLong}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := readString(t, tc.in, tc.opts)
			if len(res.Records) != len(tc.goodLines) {
				t.Fatalf("%d records, want %d (bad: %v)", len(res.Records), len(tc.goodLines), res.Bad)
			}
			for i, r := range res.Records {
				if r.Line != tc.goodLines[i] {
					t.Fatalf("record %d from line %d, want %d", i, r.Line, tc.goodLines[i])
				}
			}
			if len(res.Bad) != len(tc.bad) {
				t.Fatalf("bad lines %v, want %d", res.Bad, len(tc.bad))
			}
			for _, b := range res.Bad {
				if want, ok := tc.bad[b.Line]; !ok || !errors.Is(b, want) {
					t.Fatalf("bad line %v, want %v on line %d", b, want, b.Line)
				}
				if !strings.HasPrefix(b.Error(), "line ") {
					t.Fatalf("bad line error %q does not name the line", b.Error())
				}
			}
			if res.Blank != tc.blank {
				t.Fatalf("%d blank lines, want %d", res.Blank, tc.blank)
			}
		})
	}
}

func TestReadFailFast(t *testing.T) {
	in := "{\"prompt\":\"a\",\"answer\":\"1\"}\n\n{\"prompt\":\"b\"}\n{\"prompt\":\"c\",\"answer\":\"3\"}\n"
	res, err := Read(strings.NewReader(in), Options{FailFast: true})
	var bad BadLine
	if !errors.As(err, &bad) || bad.Line != 3 || !errors.Is(err, ErrAnswer) {
		t.Fatalf("Read error %v, want the bad line 3 matching ErrAnswer", err)
	}
	if len(res.Records) != 1 || res.Blank != 1 || res.Lines != 3 {
		t.Fatalf("result before the bad line: %+v", res)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("{\"prompt\":\"a\",\"answer\":\"1\"}\n"), iotest.ErrReader(boom))
	res, err := Read(r, Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("Read error %v, want the reader's", err)
	}
	if len(res.Records) != 1 {
		t.Fatalf("records before the error: %d, want 1", len(res.Records))
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(t.TempDir()+"/none.jsonl", Options{}); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}
