//go:build !amd64

package peak

import (
	"fmt"
	"runtime"
)

// fmaKernel has no kernel outside amd64.
func fmaKernel(bits int) (func(n int) float32, error) {
	return nil, fmt.Errorf("%w: no %d-bit FMA kernel for %s", ErrFMAUnsupported, bits, runtime.GOARCH)
}
