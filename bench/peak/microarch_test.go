package peak

import "testing"

func TestDetectMicroarch(t *testing.T) {
	tests := []struct {
		name          string
		vendor        string
		family, model int
		want          Microarch
	}{
		{"Zen (Naples)", vendorAMD, 0x17, 0x01, ZenPlus},
		{"Zen+ (Pinnacle Ridge)", vendorAMD, 0x17, 0x08, ZenPlus},
		{"Zen 2 (Rome)", vendorAMD, 0x17, 0x31, Zen2},
		{"Zen 2 (Matisse)", vendorAMD, 0x17, 0x71, Zen2},
		{"Zen 3 (Milan)", vendorAMD, 0x19, 0x01, Zen3},
		{"Zen 3 (Vermeer)", vendorAMD, 0x19, 0x21, Zen3},
		{"Zen 3 (Cezanne)", vendorAMD, 0x19, 0x50, Zen3},
		{"Zen 4 (Genoa)", vendorAMD, 0x19, 0x11, Zen4},
		{"Zen 4, first model of the range", vendorAMD, 0x19, 0x10, Zen4},
		{"Zen 4, last model of the range", vendorAMD, 0x19, 0x1f, Zen4},
		{"Zen 4 (Raphael)", vendorAMD, 0x19, 0x61, Zen4},
		{"Zen 4 (Phoenix)", vendorAMD, 0x19, 0x74, Zen4},
		{"Zen 4, last client model", vendorAMD, 0x19, 0x7f, Zen4},
		{"Zen 4 (Bergamo)", vendorAMD, 0x19, 0xa0, Zen4},
		{"Zen 4 (Siena)", vendorAMD, 0x19, 0xaf, Zen4},
		{"family 0x19 between the Zen 4 ranges", vendorAMD, 0x19, 0x80, MicroarchUnknown},
		{"family 0x19 after the Zen 4 ranges", vendorAMD, 0x19, 0xb0, MicroarchUnknown},
		{"Zen 5 (Turin)", vendorAMD, 0x1a, 0x02, Zen5},
		{"Zen 5 (Granite Ridge)", vendorAMD, 0x1a, 0x44, Zen5},
		{"older AMD", vendorAMD, 0x15, 0x02, MicroarchUnknown},
		{"AMD without model", vendorAMD, 0x19, -1, MicroarchUnknown},
		{"Intel Sapphire Rapids", vendorIntel, 6, 0x8f, "Intel family 6 model 0x8f"},
		{"Intel without family", vendorIntel, -1, 0x8f, MicroarchUnknown},
		{"Hygon", "HygonGenuine", 0x18, 0x01, MicroarchUnknown},
		{"no vendor", "", 0x19, 0x11, MicroarchUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectMicroarch(tc.vendor, tc.family, tc.model); got != tc.want {
				t.Fatalf("DetectMicroarch(%q, %#x, %#x) = %q, want %q", tc.vendor, tc.family, tc.model, got, tc.want)
			}
		})
	}
}

func TestMicroarchRate(t *testing.T) {
	tests := []struct {
		m     Microarch
		lanes int
		want  float64
	}{
		{Zen4, LanesAVX512, 0.5},
		{Zen4, LanesAVX2, 1},
		{Zen4, LanesSSE, 1},
		{Zen5, LanesAVX512, 1},
		{Zen3, LanesAVX2, 1},
		{"Intel family 6 model 0x8f", LanesAVX512, 1},
		{MicroarchUnknown, LanesAVX512, 1},
	}
	for _, tc := range tests {
		if got := tc.m.Rate(tc.lanes); got != tc.want {
			t.Errorf("%q.Rate(%d) = %v, want %v", tc.m, tc.lanes, got, tc.want)
		}
	}
}

func TestCPUInfoMicroarch(t *testing.T) {
	c := CPUInfo{Vendor: vendorAMD, Family: 25, ModelID: 17}
	if got := c.Microarch(); got != Zen4 {
		t.Fatalf("Microarch = %q, want %q", got, Zen4)
	}
}
