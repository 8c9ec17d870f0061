package schemas

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// boundedAllocator refuses to hand out more than limit bytes in total. Decode
// wraps the caller's allocator in one so that a crafted length field in a
// payload cannot make the IPC reader allocate gigabytes for a few bytes of
// input; the refusal panics and Decode turns the panic into ErrMalformed.
type boundedAllocator struct {
	memory.Allocator
	limit int64
	used  atomic.Int64
}

// decodeBudget is the most memory Decode may allocate for a payload of n
// bytes: uncompressed IPC never needs more than the payload itself plus
// alignment padding.
func decodeBudget(n int) int64 { return 4*int64(n) + 1<<16 }

func (a *boundedAllocator) take(n int) {
	if a.used.Add(int64(n)) > a.limit {
		panic(fmt.Sprintf("payload asks for more memory than its size allows (limit %d bytes)", a.limit))
	}
}

// Allocate implements memory.Allocator.
func (a *boundedAllocator) Allocate(n int) []byte {
	a.take(n)
	return a.Allocator.Allocate(n)
}

// Reallocate implements memory.Allocator.
func (a *boundedAllocator) Reallocate(n int, b []byte) []byte {
	a.take(n - len(b))
	return a.Allocator.Reallocate(n, b)
}
