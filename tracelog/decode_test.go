package tracelog

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestDecodeJSONResult(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Result
		err  bool
	}{
		{"empty", "", &Result{}, false},
		{"typed", `["a","b","c","d"]` + "\n" + `["UInt64","Nullable(Float64)","Array(Int32)","DateTime('UTC')"]` + "\n" +
			`[18446744073709551615,"nan",[1,-2],"2026-01-02 03:04:05"]` + "\n" + `["5",null,[],"1970-01-01 00:00:00"]` + "\n",
			&Result{Columns: []string{"a", "b", "c", "d"}, Types: []string{"UInt64", "Nullable(Float64)", "Array(Int32)", "DateTime('UTC')"},
				Rows: [][]any{{uint64(math.MaxUint64), math.NaN(), []any{int64(1), int64(-2)}, mustTime("2026-01-02 03:04:05")},
					{uint64(5), nil, []any{}, mustTime("1970-01-01 00:00:00")}}}, false},
		{"tuple as json text", `["t"]` + "\n" + `["Tuple(UInt8, String)"]` + "\n" + `[[1,"x"]]`,
			&Result{Columns: []string{"t"}, Types: []string{"Tuple(UInt8, String)"}, Rows: [][]any{{`[1,"x"]`}}}, false},
		{"null in non-nullable", `["a"]` + "\n" + `["Int32"]` + "\n" + `[null]`, nil, true},
		{"names types mismatch", `["a"]` + "\n" + `["Int32","String"]`, nil, true},
		{"short row", `["a","b"]` + "\n" + `["Int32","String"]` + "\n" + `[1]`, nil, true},
		{"bad int", `["a"]` + "\n" + `["Int32"]` + "\n" + `["x"]`, nil, true},
		{"bad time", `["a"]` + "\n" + `["DateTime"]` + "\n" + `[5]`, nil, true},
		{"garbage", `{`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeJSONResult([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, errResultFormat) {
					t.Fatalf("err = %v, want errResultFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if FormatValue(got.Rows) != FormatValue(tc.want.Rows) || !reflect.DeepEqual(got.Columns, tc.want.Columns) || !reflect.DeepEqual(got.Types, tc.want.Types) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
			for i := range got.Rows {
				for j := range got.Rows[i] {
					if reflect.TypeOf(got.Rows[i][j]) != reflect.TypeOf(tc.want.Rows[i][j]) {
						t.Fatalf("[%d][%d] is %T, want %T", i, j, got.Rows[i][j], tc.want.Rows[i][j])
					}
				}
			}
		})
	}
}

func mustTime(s string) any {
	v, err := parseTimeText(s)
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzDecodeJSONResult: any engine output yields a result or an error,
// never a panic, and every value has a documented Go type.
func FuzzDecodeJSONResult(f *testing.F) {
	f.Add([]byte(`["a"]` + "\n" + `["Array(Array(Nullable(Int8)))"]` + "\n" + `[[[1,null]]]`))
	f.Add([]byte(`["a","b"]` + "\n" + `["Float32","String"]` + "\n" + `["inf","x"]` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := decodeJSONResult(data)
		if err != nil {
			return
		}
		var check func(v any)
		check = func(v any) {
			switch x := v.(type) {
			case nil, string, int64, uint64, float64:
			case []any:
				for _, e := range x {
					check(e)
				}
			default:
				if _, ok := v.(interface{ Unix() int64 }); !ok {
					t.Fatalf("value of type %T", v)
				}
			}
		}
		for _, r := range res.Rows {
			if len(r) != len(res.Columns) {
				t.Fatalf("row of %d values for %d columns", len(r), len(res.Columns))
			}
			for _, v := range r {
				check(v)
			}
		}
	})
}

func TestRowBinaryRoundTrip(t *testing.T) {
	rows := syntheticRows("rb", 20, 7, 9)
	rows[2].Completion = "\x00;\n'\xff"
	rows[3].StepRewards = nil
	var b []byte
	for i := range rows {
		b = appendRowBinary(b, &rows[i])
	}
	got, err := decodeRowBinary(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		rows[i].Created = rows[i].Created.UTC()
		if !reflect.DeepEqual(got[i], rows[i]) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], rows[i])
		}
	}
	for _, cut := range []int{1, len(b) / 2, len(b) - 1} {
		if _, err := decodeRowBinary(b[:cut]); !errors.Is(err, errRowBinary) {
			t.Fatalf("cut at %d: err = %v", cut, err)
		}
	}
}

// FuzzDecodeRowBinary: arbitrary bytes decode to rows or an error, never a
// panic or an allocation beyond the input's size; rows re-encode to the
// same bytes.
func FuzzDecodeRowBinary(f *testing.F) {
	rows := syntheticRows("f", 2, 3, 1)
	var b []byte
	for i := range rows {
		b = appendRowBinary(b, &rows[i])
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeRowBinary(data)
		if err != nil {
			return
		}
		var again []byte
		for i := range got {
			again = appendRowBinary(again, &got[i])
		}
		if len(again) > len(data) {
			t.Fatalf("%d rows re-encode to %d bytes from %d", len(got), len(again), len(data))
		}
	})
}
