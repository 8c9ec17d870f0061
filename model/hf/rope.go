package hf

import (
	"encoding/json"
	"fmt"
	"math"
)

// RopeScaling is the rope_scaling entry of config.json. Type is "llama3"
// (Llama 3.1's frequency-dependent scaling) or "linear"; a missing entry or
// type "default" means no scaling.
type RopeScaling struct {
	// Type is rope_type (or the older key type).
	Type string
	// Factor divides the low frequencies (llama3) or all positions (linear).
	Factor float64
	// LowFreqFactor and HighFreqFactor bound the smoothly scaled band
	// (llama3).
	LowFreqFactor, HighFreqFactor float64
	// OriginalMaxPositions is original_max_position_embeddings (llama3).
	OriginalMaxPositions int
}

// rawRopeScaling is the rope_scaling object as decoded.
type rawRopeScaling struct {
	RopeType       string   `json:"rope_type"`
	Type           string   `json:"type"`
	Factor         *float64 `json:"factor"`
	LowFreqFactor  *float64 `json:"low_freq_factor"`
	HighFreqFactor *float64 `json:"high_freq_factor"`
	OriginalMax    *int     `json:"original_max_position_embeddings"`
}

// parseRopeScaling reads rope_scaling; nil for none.
func parseRopeScaling(msg json.RawMessage) (*RopeScaling, error) {
	if len(msg) == 0 || string(msg) == "null" {
		return nil, nil
	}
	var r rawRopeScaling
	if err := json.Unmarshal(msg, &r); err != nil {
		return nil, fmt.Errorf("%w: rope_scaling: %v", ErrConfig, err)
	}
	typ := r.RopeType
	if typ == "" {
		typ = r.Type
	}
	get := func(name string, p *float64) (float64, error) {
		if p == nil {
			return 0, fmt.Errorf("%w: rope_scaling type %q needs %s", ErrConfig, typ, name)
		}
		return *p, nil
	}
	s := &RopeScaling{Type: typ}
	var err error
	switch typ {
	case "", "default":
		return nil, nil
	case "linear":
		s.Factor, err = get("factor", r.Factor)
	case "llama3":
		if s.Factor, err = get("factor", r.Factor); err != nil {
			return nil, err
		}
		if s.LowFreqFactor, err = get("low_freq_factor", r.LowFreqFactor); err != nil {
			return nil, err
		}
		if s.HighFreqFactor, err = get("high_freq_factor", r.HighFreqFactor); err != nil {
			return nil, err
		}
		if r.OriginalMax == nil {
			return nil, fmt.Errorf("%w: rope_scaling type llama3 needs original_max_position_embeddings", ErrConfig)
		}
		s.OriginalMaxPositions = *r.OriginalMax
	default:
		return nil, fmt.Errorf("%w: rope_scaling type %q is not supported (only llama3, linear, default)", ErrConfig, typ)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// validate checks the scaling parameters.
func (s *RopeScaling) validate() error {
	if !finitePositive(s.Factor) || s.Factor > 1e4 {
		return fmt.Errorf("%w: rope_scaling factor %v", ErrConfig, s.Factor)
	}
	switch s.Type {
	case "linear":
		return nil
	case "llama3":
		if !finitePositive(s.LowFreqFactor) || !finitePositive(s.HighFreqFactor) || s.HighFreqFactor <= s.LowFreqFactor {
			return fmt.Errorf("%w: rope_scaling low_freq_factor %v, high_freq_factor %v: want 0 < low < high",
				ErrConfig, s.LowFreqFactor, s.HighFreqFactor)
		}
		if s.OriginalMaxPositions < 1 || s.OriginalMaxPositions > maxPositions {
			return fmt.Errorf("%w: original_max_position_embeddings %d", ErrConfig, s.OriginalMaxPositions)
		}
		return nil
	}
	return fmt.Errorf("%w: rope_scaling type %q", ErrConfig, s.Type)
}

// InvFreq returns the rotary inverse frequencies of the HeadDim/2 rotated
// pairs: theta^(-2i/HeadDim), scaled as RopeScaling says.
func (c Config) InvFreq() []float64 {
	half := c.HeadDim / 2
	f := make([]float64, half)
	for i := range f {
		f[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	s := c.RopeScaling
	if s == nil {
		return f
	}
	if s.Type == "linear" {
		for i := range f {
			f[i] /= s.Factor
		}
		return f
	}
	// Llama 3.1: long wavelengths are divided by factor, short ones kept,
	// the band between interpolated smoothly.
	old := float64(s.OriginalMaxPositions)
	lowWavelen, highWavelen := old/s.LowFreqFactor, old/s.HighFreqFactor
	for i, v := range f {
		wavelen := 2 * math.Pi / v
		switch {
		case wavelen < highWavelen:
		case wavelen > lowWavelen:
			f[i] = v / s.Factor
		default:
			smooth := (old/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			f[i] = (1-smooth)*v/s.Factor + smooth*v
		}
	}
	return f
}
