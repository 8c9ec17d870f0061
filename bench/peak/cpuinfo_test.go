package peak

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// block returns one /proc/cpuinfo processor block.
func block(proc, pkg, core int, mhz, flags string) string {
	var b strings.Builder
	b.WriteString("processor\t: " + itoa(proc) + "\n")
	b.WriteString("vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n")
	if mhz != "" {
		b.WriteString("cpu MHz\t\t: " + mhz + "\n")
	}
	if pkg >= 0 {
		b.WriteString("physical id\t: " + itoa(pkg) + "\ncore id\t\t: " + itoa(core) + "\n")
	}
	b.WriteString("flags\t\t: " + flags + "\n\n")
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

const zen5Flags = "fpu sse sse2 fma avx avx2 avx512f avx512vl"

func TestParseCPUInfo(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    CPUInfo
		wantErr error
	}{
		{
			name: "two cores, avx512",
			text: block(0, 0, 0, "2596.122", zen5Flags) + block(1, 0, 1, "2596.122", zen5Flags),
			want: CPUInfo{Vendor: "AuthenticAMD", Model: "AMD EPYC", Family: 26, ModelID: 2, LogicalCPUs: 2, Cores: 2, MHz: 2596.122,
				AVX2: true, FMA: true, AVX512F: true},
		},
		{
			name: "SMT siblings share a core, highest MHz wins",
			text: block(0, 0, 0, "2000", "fma avx2") + block(1, 0, 0, "3000", "fma avx2") +
				block(2, 0, 1, "2500", "fma avx2") + block(3, 0, 1, "2500", "fma avx2"),
			want: CPUInfo{Vendor: "AuthenticAMD", Model: "AMD EPYC", Family: 26, ModelID: 2, LogicalCPUs: 4, Cores: 2, MHz: 3000,
				AVX2: true, FMA: true},
		},
		{
			name: "two sockets with equal core ids",
			text: block(0, 0, 0, "2000", "sse") + block(1, 1, 0, "2000", "sse"),
			want: CPUInfo{Vendor: "AuthenticAMD", Model: "AMD EPYC", Family: 26, ModelID: 2, LogicalCPUs: 2, Cores: 2, MHz: 2000},
		},
		{
			name: "no topology: one core per processor",
			text: block(0, -1, 0, "1500", "avx2") + block(1, -1, 0, "1500", "avx2") + block(2, -1, 0, "1500", "avx2"),
			want: CPUInfo{Vendor: "AuthenticAMD", Model: "AMD EPYC", Family: 26, ModelID: 2, LogicalCPUs: 3, Cores: 3, MHz: 1500, AVX2: true},
		},
		{name: "empty", text: "", wantErr: ErrCPUInfo},
		{name: "no MHz", text: block(0, 0, 0, "", "avx2"), wantErr: ErrCPUInfo},
		{name: "bad MHz", text: block(0, 0, 0, "fast", "avx2"), wantErr: ErrCPUInfo},
		{name: "negative MHz", text: block(0, 0, 0, "-5", "avx2"), wantErr: ErrCPUInfo},
		{name: "garbage", text: "hello\nworld\n", wantErr: ErrCPUInfo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCPUInfo(strings.NewReader(tc.text))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadCPUInfoMissingFile(t *testing.T) {
	_, err := ReadCPUInfo(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, ErrCPUInfo) {
		t.Fatalf("error = %v, want ErrCPUInfo", err)
	}
}

func FuzzParseCPUInfo(f *testing.F) {
	f.Add(block(0, 0, 0, "2596.122", zen5Flags) + block(1, 0, 1, "2596.122", zen5Flags))
	f.Add(block(0, -1, 0, "1500", "avx2"))
	f.Add("processor : 0\ncpu MHz : 1e309\n")
	f.Add("processor:\n\n:\ncore id:\n")
	f.Fuzz(func(t *testing.T, text string) {
		info, err := ParseCPUInfo(strings.NewReader(text))
		if err != nil {
			if !errors.Is(err, ErrCPUInfo) {
				t.Fatalf("error %v is not ErrCPUInfo", err)
			}
			return
		}
		if info.LogicalCPUs < 1 || info.Cores < 1 || info.Cores > info.LogicalCPUs || !(info.MHz > 0) {
			t.Fatalf("inconsistent result %+v", info)
		}
	})
}
