package ort

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"zero", Config{}, true},
		{"cuda", Config{Provider: ProviderCUDA, DeviceID: 1, RequireCUDA: true}, true},
		{"unknown provider", Config{Provider: "tpu"}, false},
		{"negative device", Config{Provider: ProviderCUDA, DeviceID: -1}, false},
		{"negative threads", Config{IntraOpThreads: -1}, false},
		{"require cuda on cpu", Config{Provider: ProviderCPU, RequireCUDA: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Validate() = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestLibraryPath(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib", "libonnxruntime.so.1")
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, []byte("placeholder"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nonexistent.so")
	for _, tc := range []struct {
		name     string
		cfg      Config
		env, hom string
		want     string
		wantErr  error
	}{
		{"explicit", Config{LibraryPath: lib}, missing, "", lib, nil},
		{"explicit missing", Config{LibraryPath: missing}, lib, "", "", ErrLibraryNotFound},
		{"explicit directory", Config{LibraryPath: dir}, "", "", "", ErrLibraryNotFound},
		{"env", Config{}, lib, "", lib, nil},
		{"env missing", Config{}, missing, dir, "", ErrLibraryNotFound},
		{"home", Config{}, "", dir, lib, nil},
		{"home missing", Config{}, "", t.TempDir(), "", ErrLibraryNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvLibrary, tc.env)
			t.Setenv(EnvHome, tc.hom)
			got, err := LibraryPath(tc.cfg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("LibraryPath() error = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("LibraryPath() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLibraryNotFoundNamesSetup(t *testing.T) {
	_, err := LibraryPath(Config{LibraryPath: filepath.Join(t.TempDir(), "missing.so")})
	for _, want := range []string{"make setup", EnvLibrary} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not mention %q", err, want)
		}
	}
}

func TestInitWrongLibrary(t *testing.T) {
	testRuntime(t) // the environment exists from here on, whatever the test order
	bad := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(bad, []byte("not a shared object"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Init(Config{LibraryPath: bad}, nil)
	if !errors.Is(err, ErrLibraryLoad) {
		t.Fatalf("Init with another library = %v, want ErrLibraryLoad", err)
	}
	if _, err := Init(Config{LibraryPath: filepath.Join(t.TempDir(), "none.so")}, nil); !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("Init with a missing library = %v, want ErrLibraryNotFound", err)
	}
}

func TestInitRepeated(t *testing.T) {
	testRuntime(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := Init(DefaultConfig(), nil)
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Init: %v", err)
		}
	}
}

// TestCUDAFallback checks provider selection. The cached library is the CPU
// build, so CUDA cannot be enabled: without RequireCUDA the Runtime falls
// back to CPU, with it Init fails.
func TestCUDAFallback(t *testing.T) {
	testRuntime(t)
	r, err := Init(Config{Provider: ProviderCUDA}, nil)
	if err != nil {
		t.Fatalf("Init(cuda): %v", err)
	}
	if r.Provider() != ProviderCPU {
		t.Skipf("CUDA provider loaded (provider %q); fallback not testable here", r.Provider())
	}
	_, err = Init(Config{Provider: ProviderCUDA, RequireCUDA: true}, nil)
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrCUDAUnavailable) {
		t.Fatalf("Init(cuda, required) = %v, want ErrCUDAUnavailable", err)
	}
}

// TestInitUnloadableLibrary checks the first Init of a process against a file
// that is not a shared library. The environment is process-wide and other
// tests create it, so the check runs in a child process of the test binary.
func TestInitUnloadableLibrary(t *testing.T) {
	const envBad = "WSGRPO_ORT_TEST_BAD_LIB"
	if bad := os.Getenv(envBad); bad != "" {
		_, err := Init(Config{LibraryPath: bad}, nil)
		if !errors.Is(err, ErrLibraryLoad) || !strings.Contains(err.Error(), "make setup") {
			t.Fatalf("Init(%s) = %v, want ErrLibraryLoad naming `make setup`", bad, err)
		}
		return
	}
	bad := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(bad, []byte("not a shared object"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInitUnloadableLibrary$", "-test.count=1")
	cmd.Env = append(os.Environ(), envBad+"="+bad)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
}
