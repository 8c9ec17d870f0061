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

// Theoretical is a derived peak:
// Cores × GHz × FMAUnits × Lanes × 2 × Rate.
type Theoretical struct {
	// Microarch is the core design the rate was taken for.
	Microarch Microarch `json:"microarch"`
	Cores     int       `json:"cores"`
	GHz       float64   `json:"ghz"`
	FMAUnits  int       `json:"fma_units"`
	Lanes     int       `json:"lanes"`
	// Rate is the FMAs of this width one unit starts per cycle (see
	// Microarch.Rate): 0.5 for 512-bit FMAs on AMD Zen 4, else 1.
	Rate   float64 `json:"rate"`
	GFLOPs float64 `json:"gflops"`
}

// String renders the derivation, e.g.
// "2 cores × 2.596 GHz × 2 FMA × 8 lanes × 2 = 166.1 GFLOP/s", with a
// "× 0.5 (512-bit FMAs at 0.5/cycle on AMD Zen 4)" factor where Rate is
// not 1.
func (t Theoretical) String() string {
	rate := ""
	if t.Rate != 1 {
		rate = fmt.Sprintf(" × %g (%d-bit FMAs at %g/cycle on %s)", t.Rate, t.Lanes*32, t.Rate, t.Microarch)
	}
	return fmt.Sprintf("%d cores × %.3f GHz × %d FMA × %d lanes × 2%s = %.1f GFLOP/s",
		t.Cores, t.GHz, t.FMAUnits, t.Lanes, rate, t.GFLOPs)
}

// Derive returns the fp32 peak of cpu with fmaUnits FMA pipes per core and
// lanes fp32 lanes per vector, at the rate cpu's microarchitecture starts
// FMAs of that width (cpu.Microarch().Rate).
func Derive(cpu CPUInfo, fmaUnits, lanes int) Theoretical {
	ghz := cpu.MHz / 1000
	m := cpu.Microarch()
	rate := m.Rate(lanes)
	return Theoretical{
		Microarch: m,
		Cores:     cpu.Cores,
		GHz:       ghz,
		FMAUnits:  fmaUnits,
		Lanes:     lanes,
		Rate:      rate,
		GFLOPs:    float64(cpu.Cores) * ghz * float64(fmaUnits) * float64(lanes) * 2 * rate,
	}
}

// WidestLanes returns the fp32 lanes of the widest vector FMA the flags
// advertise: 16 with avx512f, 8 with avx2 and fma, else 4. Derive halves
// the 512-bit rate on cores that split 512-bit FMAs into two 256-bit halves
// (AMD Zen 4), where the widest vector is then no faster than AVX2.
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
