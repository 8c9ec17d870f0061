package peak

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrCPUInfo means the CPU description could not be read or parsed.
	ErrCPUInfo = errors.New("peak: cannot read CPU info")
	// ErrBadConfig means a Config asks for an impossible measurement.
	ErrBadConfig = errors.New("peak: bad config")
	// ErrGEMM means the ONNX Runtime GEMM could not be built, run or
	// returned a wrong product.
	ErrGEMM = errors.New("peak: GEMM measurement failed")
)

// DefaultCPUInfoPath is where Linux describes the CPUs.
const DefaultCPUInfoPath = "/proc/cpuinfo"

// maxCPUInfoBytes bounds how much of a cpuinfo file is read.
const maxCPUInfoBytes = 16 << 20

// CPUInfo is what the peak derivation needs from /proc/cpuinfo.
type CPUInfo struct {
	// Vendor is the "vendor_id" of the first processor, e.g.
	// "AuthenticAMD" or "GenuineIntel".
	Vendor string `json:"vendor"`
	// Model is the "model name" of the first processor.
	Model string `json:"model"`
	// Family and ModelID are the "cpu family" and "model" numbers (-1 when
	// absent).
	Family  int `json:"family"`
	ModelID int `json:"model_id"`
	// LogicalCPUs counts "processor" entries.
	LogicalCPUs int `json:"logical_cpus"`
	// Cores counts distinct (physical id, core id) pairs: SMT siblings
	// share one core's FMA units. It equals LogicalCPUs when the file has
	// no topology fields.
	Cores int `json:"cores"`
	// MHz is the highest "cpu MHz" of any processor.
	MHz float64 `json:"mhz"`
	// AVX2, FMA and AVX512F are the corresponding flags of the first
	// processor.
	AVX2    bool `json:"avx2"`
	FMA     bool `json:"fma"`
	AVX512F bool `json:"avx512f"`
}

// ReadCPUInfo parses the cpuinfo file at path ("" means
// DefaultCPUInfoPath).
func ReadCPUInfo(path string) (CPUInfo, error) {
	if path == "" {
		path = DefaultCPUInfoPath
	}
	f, err := os.Open(path)
	if err != nil {
		return CPUInfo{}, fmt.Errorf("%w: %w", ErrCPUInfo, err)
	}
	defer f.Close()
	return ParseCPUInfo(f)
}

// ParseCPUInfo parses Linux /proc/cpuinfo text (x86 layout: blank-line
// separated "key : value" blocks, one per logical CPU). It needs at least
// one processor with a positive "cpu MHz".
func ParseCPUInfo(r io.Reader) (CPUInfo, error) {
	info := CPUInfo{Family: -1, ModelID: -1}
	type coreKey struct{ pkg, core string }
	cores := map[coreKey]bool{}
	var pkg, core string
	first := true // still in the first processor's block
	flush := func() {
		if core != "" {
			cores[coreKey{pkg, core}] = true
		}
		pkg, core = "", ""
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxCPUInfoBytes))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "processor":
			if info.LogicalCPUs > 0 {
				first = false
				flush()
			}
			info.LogicalCPUs++
		case "physical id":
			pkg = val
		case "core id":
			core = val
		case "cpu MHz":
			mhz, err := strconv.ParseFloat(val, 64)
			if err != nil || mhz <= 0 || mhz > 1e6 {
				return CPUInfo{}, fmt.Errorf("%w: bad cpu MHz %q", ErrCPUInfo, val)
			}
			info.MHz = max(info.MHz, mhz)
		}
		if !first {
			continue
		}
		switch key {
		case "vendor_id":
			info.Vendor = val
		case "model name":
			info.Model = val
		case "cpu family":
			info.Family = atoiOr(val, -1)
		case "model":
			info.ModelID = atoiOr(val, -1)
		case "flags":
			for _, fl := range strings.Fields(val) {
				switch fl {
				case "avx2":
					info.AVX2 = true
				case "fma":
					info.FMA = true
				case "avx512f":
					info.AVX512F = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return CPUInfo{}, fmt.Errorf("%w: %w", ErrCPUInfo, err)
	}
	flush()
	if info.LogicalCPUs == 0 {
		return CPUInfo{}, fmt.Errorf("%w: no processor entries", ErrCPUInfo)
	}
	if info.MHz == 0 {
		return CPUInfo{}, fmt.Errorf("%w: no cpu MHz field", ErrCPUInfo)
	}
	info.Cores = len(cores)
	if info.Cores == 0 || info.Cores > info.LogicalCPUs {
		info.Cores = info.LogicalCPUs
	}
	return info, nil
}

// Microarch names the core design from Vendor, Family and ModelID (see
// DetectMicroarch).
func (c CPUInfo) Microarch() Microarch {
	return DetectMicroarch(c.Vendor, c.Family, c.ModelID)
}

// atoiOr parses s as a decimal int, or returns def.
func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}
