package peak

import "testing"

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
	tests := []struct {
		name                string
		avx2, widest, boost float64
		want                float64
	}{
		{"boost above nominal", 100, 200, 300, 300},
		{"measured clock below nominal", 100, 200, 150, 200},
		{"no avx512", 100, 100, 90, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Result{AVX2: Theoretical{GFLOPs: tc.avx2}, Widest: Theoretical{GFLOPs: tc.widest}, Boost: Theoretical{GFLOPs: tc.boost}}
			if got := r.PeakGFLOPs(); got != tc.want {
				t.Fatalf("PeakGFLOPs = %v, want %v", got, tc.want)
			}
		})
	}
}
