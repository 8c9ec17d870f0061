package pipeline

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// PoolAllocator is an Arrow allocator that recycles the buffers decoded
// batches release. A stage decodes a batch of a few hundred kilobytes per
// message and drops it moments later; with plain Go allocations the garbage
// collector runs every few batches and costs a third of a hop's throughput
// (docs/benchmarks/pipeline.md). Buffers are kept per power-of-two size
// class from 4 KiB to 64 MiB in sync.Pools, so idle memory is still returned
// to the runtime. Smaller and larger requests are plain allocations.
// Memory is zeroed and 64-byte aligned, as memory.GoAllocator's is.
type PoolAllocator struct {
	classes [poolMaxShift - poolMinShift + 1]sync.Pool
}

const (
	poolMinShift = 12 // 4 KiB
	poolMaxShift = 26 // 64 MiB
	poolAlign    = 64
)

// NewPoolAllocator returns an empty PoolAllocator.
func NewPoolAllocator() *PoolAllocator { return &PoolAllocator{} }

// defaultPool is the runners' allocator when RunnerConfig.Allocator is nil.
var defaultPool = NewPoolAllocator()

// class returns the size class index for n bytes, or -1 outside the pooled
// range.
func poolClass(n int) int {
	if n <= 0 || n > 1<<poolMaxShift {
		return -1
	}
	shift := bits.Len(uint(n - 1))
	if shift < poolMinShift {
		return -1
	}
	return shift - poolMinShift
}

// aligned returns a zeroed slice of length n and capacity at least size
// whose first byte is 64-byte aligned.
func aligned(n, size int) []byte {
	raw := make([]byte, size+poolAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(raw))) % poolAlign); r != 0 {
		off = poolAlign - r
	}
	return raw[off : off+n : off+size]
}

// Allocate implements memory.Allocator.
func (p *PoolAllocator) Allocate(n int) []byte {
	c := poolClass(n)
	if c < 0 {
		return aligned(n, max(n, 0))
	}
	if v := p.classes[c].Get(); v != nil {
		b := (*v.(*[]byte))[:n]
		clear(b)
		return b
	}
	return aligned(n, 1<<(c+poolMinShift))
}

// Reallocate implements memory.Allocator.
func (p *PoolAllocator) Reallocate(n int, b []byte) []byte {
	if n <= cap(b) {
		old := len(b)
		b = b[:n]
		if n > old {
			clear(b[old:])
		}
		return b
	}
	nb := p.Allocate(n)
	copy(nb, b)
	p.Free(b)
	return nb
}

// Free implements memory.Allocator: pooled-size buffers go back to their
// class.
func (p *PoolAllocator) Free(b []byte) {
	size := cap(b)
	if size < 1<<poolMinShift {
		return
	}
	// The largest class that fits in the buffer's capacity.
	c := bits.Len(uint(size)) - 1 - poolMinShift
	if c < 0 {
		return
	}
	c = min(c, len(p.classes)-1)
	b = b[:0]
	p.classes[c].Put(&b)
}

var _ memory.Allocator = (*PoolAllocator)(nil)
