//go:build amd64

package peak

import (
	"errors"
	"strings"
	"testing"
)

func TestFMA512SkippedWithoutAVX512F(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("no AVX2 and FMA: the 256-bit kernel cannot run either")
	}
	saved := hasAVX512F
	hasAVX512F = false
	t.Cleanup(func() { hasAVX512F = saved })

	_, err := MeasureFMA(512, 1, 1, 1000)
	if !errors.Is(err, ErrFMAUnsupported) || !strings.Contains(err.Error(), "AVX-512F") {
		t.Fatalf("MeasureFMA(512) error = %v, want ErrFMAUnsupported naming AVX-512F", err)
	}
	rates, err := measureFMAWidths(Config{FMAThreads: 2, FMARuns: 2, FMAIters: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(rates) != 2 || rates[0].Bits != 256 || rates[0].Unsupported != "" || !(rates[0].TotalGFLOPs > 0) {
		t.Fatalf("256-bit entry = %+v, want a measured rate", rates)
	}
	if r := rates[1]; r.Bits != 512 || !strings.Contains(r.Unsupported, "AVX-512F") || r.PerCoreGFLOPs != 0 || r.TotalGFLOPs != 0 {
		t.Fatalf("512-bit entry = %+v, want unsupported and no figure", r)
	}
	if got := (Result{FMA: rates}).BestFMA().Bits; got != 256 {
		t.Fatalf("BestFMA().Bits = %d, want 256", got)
	}
	if s := rates[1].String(); !strings.HasPrefix(s, "512-bit unsupported: ") {
		t.Fatalf("String = %q", s)
	}
}
