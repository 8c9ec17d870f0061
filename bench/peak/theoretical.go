package peak

import "fmt"

// Vector widths, in fp32 lanes.
const (
	LanesSSE    = 4  // 128-bit
	LanesAVX2   = 8  // 256-bit
	LanesAVX512 = 16 // 512-bit
)

// DefaultFMAUnits is the number of vector FMA pipes per core assumed when
// the caller does not say: two on every x86 server core since Intel
// Haswell and AMD Zen 2. /proc/cpuinfo cannot tell.
const DefaultFMAUnits = 2

// Theoretical is a derived peak: Cores × GHz × FMAUnits × Lanes × 2.
type Theoretical struct {
	Cores    int     `json:"cores"`
	GHz      float64 `json:"ghz"`
	FMAUnits int     `json:"fma_units"`
	Lanes    int     `json:"lanes"`
	GFLOPs   float64 `json:"gflops"`
}

// String renders the derivation, e.g.
// "2 cores × 2.596 GHz × 2 FMA × 8 lanes × 2 = 166.1 GFLOP/s".
func (t Theoretical) String() string {
	return fmt.Sprintf("%d cores × %.3f GHz × %d FMA × %d lanes × 2 = %.1f GFLOP/s",
		t.Cores, t.GHz, t.FMAUnits, t.Lanes, t.GFLOPs)
}

// Derive returns the fp32 peak of cpu with fmaUnits FMA pipes per core and
// lanes fp32 lanes per vector.
func Derive(cpu CPUInfo, fmaUnits, lanes int) Theoretical {
	ghz := cpu.MHz / 1000
	return Theoretical{
		Cores:    cpu.Cores,
		GHz:      ghz,
		FMAUnits: fmaUnits,
		Lanes:    lanes,
		GFLOPs:   float64(cpu.Cores) * ghz * float64(fmaUnits) * float64(lanes) * 2,
	}
}

// WidestLanes returns the fp32 lanes of the widest vector FMA the flags
// advertise: 16 with avx512f, 8 with avx2 and fma, else 4. AVX-512 on
// cores that split 512-bit operations into two 256-bit halves (AMD Zen 4)
// makes this figure a loose upper bound.
func WidestLanes(cpu CPUInfo) int {
	switch {
	case cpu.AVX512F:
		return LanesAVX512
	case cpu.AVX2 && cpu.FMA:
		return LanesAVX2
	default:
		return LanesSSE
	}
}
