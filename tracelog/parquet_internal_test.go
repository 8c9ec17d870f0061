package tracelog

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

func parquetBytes(tb testing.TB, mem memory.Allocator, rows []Row) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(ParquetSchema, &buf, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		tb.Fatal(err)
	}
	rec := rowsToRecord(mem, rows)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestParquetRecordRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rows := syntheticRows("p", 30, 5, 2)
	rows[1].StepRewards = nil
	b := parquetBytes(t, mem, rows)
	var got []Row
	n, err := readParquet(context.Background(), bytes.NewReader(b), func(rs []Row) error { got = append(got, rs...); return nil })
	if err != nil || n != 30 {
		t.Fatalf("read %d, %v", n, err)
	}
	for i := range rows {
		rows[i].Created = rows[i].Created.UTC()
	}
	if !reflect.DeepEqual(got, rows) {
		t.Fatalf("rows differ:\n got %+v\nwant %+v", got[0], rows[0])
	}
	stored := func() []byte {
		var buf bytes.Buffer
		w, err := pqarrow.NewFileWriter(ParquetSchema, &buf, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}()
	if _, err := readParquet(context.Background(), bytes.NewReader(stored), func([]Row) error { return nil }); !errors.Is(err, ErrParquet) {
		t.Fatalf("stored Arrow schema: err = %v", err)
	}
	stop := errors.New("stop")
	if _, err := readParquet(context.Background(), bytes.NewReader(b), func([]Row) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error lost: %v", err)
	}
}

// FuzzReadParquet: arbitrary bytes are refused with ErrParquet or read as
// rows, never a panic.
func FuzzReadParquet(f *testing.F) {
	b := parquetBytes(f, memory.NewGoAllocator(), syntheticRows("f", 3, 2, 1))
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(append([]byte("PAR1"), b[len(b)-64:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := readParquet(context.Background(), bytes.NewReader(data), func([]Row) error { return nil })
		if err != nil && !errors.Is(err, ErrParquet) {
			t.Fatalf("error not ErrParquet: %v", err)
		}
	})
}

// parquetColumnsBytes writes rows as a Parquet file holding only the first
// n columns of ParquetSchema, as an older export (or a truncated one) does.
func parquetColumnsBytes(tb testing.TB, rows []Row, n int) []byte {
	tb.Helper()
	full := rowsToRecord(memory.DefaultAllocator, rows)
	defer full.Release()
	sc := arrow.NewSchema(ParquetSchema.Fields()[:n], nil)
	rec := array.NewRecordBatch(sc, full.Columns()[:n], full.NumRows())
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(sc, &buf, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestParquetColumnCounts(t *testing.T) {
	rows := syntheticRows("old", 12, 3, 4)
	if rows[0].GroupSize == 0 || rows[0].Labeler == "" {
		t.Fatal("synthetic rows lack group_size or labeler")
	}
	tests := []struct {
		name    string
		columns int
		wantErr bool
		zeroNew bool // group_size and labeler read as zero values
	}{
		{"current export", len(Columns), false, false},
		{"export before group_size and labeler", parquetV1Columns, false, true},
		{"older export missing a column", parquetV1Columns - 1, true, false},
		{"export missing only labeler", len(Columns) - 1, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := parquetColumnsBytes(t, rows, tc.columns)
			var got []Row
			_, err := readParquet(context.Background(), bytes.NewReader(b), func(rs []Row) error { got = append(got, rs...); return nil })
			if tc.wantErr {
				if !errors.Is(err, ErrParquet) {
					t.Fatalf("err = %v, want ErrParquet", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := make([]Row, len(rows))
			for i, r := range rows {
				r.Created = r.Created.UTC()
				if tc.zeroNew {
					r.GroupSize, r.Labeler = 0, ""
				}
				want[i] = r
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("rows differ:\n got %+v\nwant %+v", got[0], want[0])
			}
		})
	}
}
