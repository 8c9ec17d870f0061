package peak

import "testing"

// zen4 and zen5 are 2-core, 2.5 GHz AMD Zen 4 (EPYC Genoa) and Zen 5 (EPYC
// Turin) CPUs.
var (
	zen4 = CPUInfo{Vendor: vendorAMD, Family: 0x19, ModelID: 0x11, Cores: 2, MHz: 2500}
	zen5 = CPUInfo{Vendor: vendorAMD, Family: 0x1a, ModelID: 0x02, Cores: 2, MHz: 2500}
)

func TestDerive(t *testing.T) {
	tests := []struct {
		name       string
		cpu        CPUInfo
		fma, lanes int
		want       float64
	}{
		{"2 cores 2.5 GHz AVX2", CPUInfo{Cores: 2, MHz: 2500}, 2, LanesAVX2, 2 * 2.5 * 2 * 8 * 2},
		{"2 cores 2.5 GHz AVX-512", CPUInfo{Cores: 2, MHz: 2500}, 2, LanesAVX512, 2 * 2.5 * 2 * 16 * 2},
		{"one FMA pipe", CPUInfo{Cores: 4, MHz: 1000}, 1, LanesSSE, 4 * 1 * 1 * 4 * 2},
		{"Zen 4 AVX2", zen4, 2, LanesAVX2, 2 * 2.5 * 2 * 8 * 2},
		{"Zen 4 AVX-512 at half rate: equal to AVX2", zen4, 2, LanesAVX512, 2 * 2.5 * 2 * 8 * 2},
		{"Zen 5 AVX-512 at full rate", zen5, 2, LanesAVX512, 2 * 2.5 * 2 * 16 * 2},
		{"Zen 3 AVX2", CPUInfo{Vendor: vendorAMD, Family: 0x19, ModelID: 0x01, Cores: 2, MHz: 2500}, 2, LanesAVX2, 2 * 2.5 * 2 * 8 * 2},
		{"Intel AVX-512", CPUInfo{Vendor: vendorIntel, Family: 6, ModelID: 0x8f, Cores: 2, MHz: 2500}, 2, LanesAVX512, 2 * 2.5 * 2 * 16 * 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Derive(tc.cpu, tc.fma, tc.lanes)
			if got.GFLOPs != tc.want || got.Cores != tc.cpu.Cores || got.Lanes != tc.lanes || got.FMAUnits != tc.fma {
				t.Fatalf("Derive = %+v, want %v GFLOP/s", got, tc.want)
			}
		})
	}
}

func TestTheoreticalString(t *testing.T) {
	got := Derive(CPUInfo{Cores: 2, MHz: 2596.122}, 2, LanesAVX2).String()
	want := "2 cores × 2.596 GHz × 2 FMA × 8 lanes × 2 = 166.2 GFLOP/s"
	if got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	got = Derive(zen4, 2, LanesAVX512).String()
	want = "2 cores × 2.500 GHz × 2 FMA × 16 lanes × 2 × 0.5 (512-bit FMAs at 0.5/cycle on AMD Zen 4) = 160.0 GFLOP/s"
	if got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

func TestWidestLanes(t *testing.T) {
	tests := []struct {
		name string
		cpu  CPUInfo
		want int
	}{
		{"avx512f", CPUInfo{AVX2: true, FMA: true, AVX512F: true}, LanesAVX512},
		{"avx2 and fma", CPUInfo{AVX2: true, FMA: true}, LanesAVX2},
		{"avx2 without fma", CPUInfo{AVX2: true}, LanesSSE},
		{"none", CPUInfo{}, LanesSSE},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := WidestLanes(tc.cpu); got != tc.want {
				t.Fatalf("WidestLanes = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPeakGFLOPs(t *testing.T) {
	measured := func(bits int, perCore, total float64) FMARate {
		return FMARate{Bits: bits, PerCoreGFLOPs: perCore, TotalGFLOPs: total, Threads: 2}
	}
	unsupported := FMARate{Bits: 512, Unsupported: "no AVX-512F"}
	tests := []struct {
		name                string
		avx2, widest, boost float64
		fma                 []FMARate
		wantTheoretical     float64
		wantMeasured        float64
		wantPeak            float64
		wantBits            int
	}{
		{"boost above nominal", 100, 200, 300, []FMARate{measured(256, 110, 220), measured(512, 105, 210)}, 300, 220, 220, 256},
		{"512-bit faster", 100, 200, 300, []FMARate{measured(256, 70, 140), measured(512, 140, 280)}, 300, 280, 280, 512},
		{"measured clock below nominal", 100, 200, 150, []FMARate{measured(256, 50, 100), unsupported}, 200, 100, 100, 256},
		{"no kernel ran: theoretical", 100, 100, 90, []FMARate{{Bits: 256, Unsupported: "arm64"}, unsupported}, 100, 0, 100, 0},
		{"no FMA measurement at all", 100, 100, 90, nil, 100, 0, 100, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Result{FMA: tc.fma, AVX2: Theoretical{GFLOPs: tc.avx2}, Widest: Theoretical{GFLOPs: tc.widest}, Boost: Theoretical{GFLOPs: tc.boost}}
			if got := r.TheoreticalPeakGFLOPs(); got != tc.wantTheoretical {
				t.Errorf("TheoreticalPeakGFLOPs = %v, want %v", got, tc.wantTheoretical)
			}
			if got := r.MeasuredPeakGFLOPs(); got != tc.wantMeasured {
				t.Errorf("MeasuredPeakGFLOPs = %v, want %v", got, tc.wantMeasured)
			}
			if got := r.PeakGFLOPs(); got != tc.wantPeak {
				t.Errorf("PeakGFLOPs = %v, want %v", got, tc.wantPeak)
			}
			if got := r.BestFMA().Bits; got != tc.wantBits {
				t.Errorf("BestFMA().Bits = %v, want %v", got, tc.wantBits)
			}
		})
	}
}
