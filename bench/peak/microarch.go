package peak

import "fmt"

// Microarch names a CPU core design, as far as the fp32 peak is concerned:
// "AMD Zen 4", "Intel family 6 model 0x8f", or MicroarchUnknown.
type Microarch string

// Core designs DetectMicroarch names.
const (
	MicroarchUnknown Microarch = "unknown"
	ZenPlus          Microarch = "AMD Zen/Zen+"
	Zen2             Microarch = "AMD Zen 2"
	Zen3             Microarch = "AMD Zen 3"
	Zen4             Microarch = "AMD Zen 4"
	Zen5             Microarch = "AMD Zen 5"
)

// cpuinfo vendor_id values.
const (
	vendorAMD   = "AuthenticAMD"
	vendorIntel = "GenuineIntel"
)

// DetectMicroarch names the core design from /proc/cpuinfo's vendor_id,
// "cpu family" and "model":
//
//   - AMD family 0x17: Zen/Zen+ below model 0x30, Zen 2 from 0x30;
//   - AMD family 0x19: Zen 4 for models 0x10-0x1f (Genoa), 0x60-0x7f
//     (Raphael, Phoenix) and 0xa0-0xaf (Bergamo, Siena); Zen 3 for the
//     other models below 0x60 (Milan, Vermeer, Rembrandt, Cezanne);
//   - AMD family 0x1a: Zen 5;
//   - Intel: "Intel family F model 0xM" (the core cannot be told from the
//     model number without a list that goes stale);
//   - anything else: MicroarchUnknown.
func DetectMicroarch(vendor string, family, model int) Microarch {
	switch vendor {
	case vendorAMD:
		switch {
		case family == 0x17 && model >= 0 && model < 0x30:
			return ZenPlus
		case family == 0x17 && model >= 0x30:
			return Zen2
		case family == 0x19 && (model >= 0x10 && model <= 0x1f || model >= 0x60 && model <= 0x7f || model >= 0xa0 && model <= 0xaf):
			return Zen4
		case family == 0x19 && model >= 0 && model < 0x60:
			return Zen3
		case family == 0x1a:
			return Zen5
		}
	case vendorIntel:
		if family >= 0 && model >= 0 {
			return Microarch(fmt.Sprintf("Intel family %d model %#x", family, model))
		}
	}
	return MicroarchUnknown
}

// Rate returns how many FMAs of the given width (in fp32 lanes) one FMA
// unit of this core design starts per cycle: 0.5 for 512-bit FMAs on AMD
// Zen 4, which splits each into two 256-bit halves, else 1. Intel parts
// with a single 512-bit FMA port (some Xeon Silver and client cores) are
// not told apart, so their 512-bit figure stays an upper bound.
func (m Microarch) Rate(lanes int) float64 {
	if m == Zen4 && lanes > LanesAVX2 {
		return 0.5
	}
	return 1
}
