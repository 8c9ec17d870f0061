package arith

import (
	"errors"
	"math"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"default", func(*Config) {}, true},
		{"one op", func(c *Config) { c.MinOps, c.MaxOps = 1, 1 }, true},
		{"eight ops", func(c *Config) { c.MaxOps = 8 }, true},
		{"zero shares", func(c *Config) { c.SlipShare, c.Overthink.Share = 0, 0 }, true},
		{"no verify passes", func(c *Config) { c.Overthink.MinVerify, c.Overthink.MaxVerify = 0, 0 }, true},
		{"zero ops", func(c *Config) { c.MinOps = 0 }, false},
		{"max below min", func(c *Config) { c.MinOps, c.MaxOps = 4, 3 }, false},
		{"nine ops overflow", func(c *Config) { c.MaxOps = 9 }, false},
		{"zero operand", func(c *Config) { c.MaxOperand = 0 }, false},
		{"big operand", func(c *Config) { c.MaxOperand = 1 << 40 }, false},
		{"test share zero", func(c *Config) { c.TestShare = 0 }, false},
		{"test share one", func(c *Config) { c.TestShare = 1 }, false},
		{"test share NaN", func(c *Config) { c.TestShare = math.NaN() }, false},
		{"slip negative", func(c *Config) { c.SlipShare = -0.1 }, false},
		{"slip above one", func(c *Config) { c.SlipShare = 1.5 }, false},
		{"overthink NaN", func(c *Config) { c.Overthink.Share = math.NaN() }, false},
		{"check prob", func(c *Config) { c.Overthink.CheckProb = 2 }, false},
		{"repeat prob", func(c *Config) { c.Overthink.RepeatProb = -1 }, false},
		{"early answer prob", func(c *Config) { c.Overthink.EarlyAnswerProb = 1.01 }, false},
		{"negative verify", func(c *Config) { c.Overthink.MinVerify = -1 }, false},
		{"verify max below min", func(c *Config) { c.Overthink.MinVerify, c.Overthink.MaxVerify = 2, 1 }, false},
		{"too many verify", func(c *Config) { c.Overthink.MaxVerify = MaxVerifyPasses + 1 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() error %v does not match ErrConfig", err)
			}
			if _, nerr := New(cfg); (nerr == nil) != tc.ok {
				t.Fatalf("New() = %v, want ok=%v", nerr, tc.ok)
			}
		})
	}
}
