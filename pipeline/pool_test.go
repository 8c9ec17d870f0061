package pipeline

import (
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/wsgrpo/wsgrpo/schemas"
)

func TestPoolAllocator(t *testing.T) {
	p := NewPoolAllocator()
	tests := []struct {
		name string
		n    int
	}{
		{"tiny, unpooled", 10},
		{"one class", 4096},
		{"between classes", 300_000},
		{"largest class", 1 << 26},
		{"beyond the classes", 1<<26 + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 3 {
				b := p.Allocate(tc.n)
				if len(b) != tc.n {
					t.Fatalf("len %d, want %d", len(b), tc.n)
				}
				if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%poolAlign != 0 {
					t.Fatal("buffer is not 64-byte aligned")
				}
				for i, v := range b {
					if v != 0 {
						t.Fatalf("round %d: byte %d is %d, want zeroed memory", round, i, v)
					}
				}
				for i := range b {
					b[i] = 0xAB
				}
				p.Free(b)
			}
		})
	}
	t.Run("reallocate keeps the prefix and zeroes the rest", func(t *testing.T) {
		b := p.Allocate(5000)
		for i := range b {
			b[i] = 7
		}
		b = p.Reallocate(20000, b)
		if len(b) != 20000 || b[4999] != 7 || b[5000] != 0 || b[19999] != 0 {
			t.Fatalf("reallocate: len %d, b[4999]=%d b[5000]=%d", len(b), b[4999], b[5000])
		}
		b = p.Reallocate(100, b)
		if len(b) != 100 || b[99] != 7 {
			t.Fatal("shrinking lost data")
		}
		p.Free(b)
	})
}

// TestPoolAllocatorDecodes checks the pool under the real workload: decode
// and release batches, then decode again and compare.
func TestPoolAllocatorDecodes(t *testing.T) {
	p := NewPoolAllocator()
	rec := BenchBatch(memory.NewGoAllocator(), "pool", 8, 32)
	defer rec.Release()
	data, err := schemas.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	want, err := schemas.ReadRollouts(rec)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		got, err := schemas.Decode(schemas.KindRollout, data, p)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := schemas.ReadRollouts(got)
		got.Release()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want) || rows[3].TrajectoryID != want[3].TrajectoryID || rows[7].TokenLogprobs[31] != want[7].TokenLogprobs[31] {
			t.Fatal("decoded rows differ")
		}
	}
}
