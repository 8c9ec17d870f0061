//go:build amd64

package peak

import (
	"fmt"

	"golang.org/x/sys/cpu"
)

// fma256 and fma512 are in fma_amd64.s.
//
//go:noescape
func fma256(n int) float32

//go:noescape
func fma512(n int) float32

// The x86 features the kernels need (with OS support for their register
// state), as variables so that a test can take one away.
var (
	hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512F = cpu.X86.HasAVX512F
)

// fmaKernel returns the assembly kernel for a vector of bits bits, or
// ErrFMAUnsupported when this CPU (and OS) lacks its instructions.
func fmaKernel(bits int) (func(n int) float32, error) {
	switch bits {
	case 256:
		if !hasAVX2FMA {
			return nil, fmt.Errorf("%w: 256-bit FMA needs AVX2 and FMA", ErrFMAUnsupported)
		}
		return fma256, nil
	case 512:
		if !hasAVX512F {
			return nil, fmt.Errorf("%w: 512-bit FMA needs AVX-512F (with OS support for the ZMM state)", ErrFMAUnsupported)
		}
		return fma512, nil
	}
	return nil, fmt.Errorf("%w: no %d-bit FMA kernel (have 256 and 512)", ErrFMAUnsupported, bits)
}
