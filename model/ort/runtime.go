package ort

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// The ONNX Runtime environment is process-wide: it is created once, by the
// first successful Init, from one library, and never torn down.
var (
	envMu   sync.Mutex
	envPath string // library the environment was created from; "" before
)

// Runtime creates sessions under one Config. Runtimes share the process-wide
// environment, so several may coexist (for example with different thread
// counts) provided they name the same library. A Runtime is safe for
// concurrent use.
type Runtime struct {
	cfg      Config
	provider string
	log      *slog.Logger
}

// Init initialises the process-wide ONNX Runtime environment on first use
// and returns a Runtime for c. It is safe to call repeatedly and
// concurrently; a later call that resolves to a different library than the
// one already loaded fails with ErrLibraryLoad. When c asks for CUDA and the
// CUDA provider cannot be enabled, Init logs a warning and falls back to CPU,
// or fails with ErrCUDAUnavailable if c.RequireCUDA is set. A nil log
// discards logging.
func Init(c Config, log *slog.Logger) (*Runtime, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	path, err := LibraryPath(c)
	if err != nil {
		return nil, err
	}
	if err := initEnv(path, log); err != nil {
		return nil, err
	}
	r := &Runtime{cfg: c, provider: ProviderCPU, log: log}
	if c.Provider == ProviderCUDA {
		if err := probeCUDA(c.DeviceID); err != nil {
			if c.RequireCUDA {
				return nil, fmt.Errorf("%w: device %d: %w", ErrCUDAUnavailable, c.DeviceID, err)
			}
			log.Warn("CUDA execution provider unavailable, falling back to CPU",
				"device", c.DeviceID, "err", err)
		} else {
			r.provider = ProviderCUDA
		}
	}
	return r, nil
}

// initEnv creates the environment from the library at path unless it exists.
func initEnv(path string, log *slog.Logger) error {
	envMu.Lock()
	defer envMu.Unlock()
	if envPath != "" {
		if !sameFile(envPath, path) {
			return fmt.Errorf("%w: environment already initialised from %s, cannot switch to %s",
				ErrLibraryLoad, envPath, path)
		}
		return nil
	}
	ortgo.SetSharedLibraryPath(path)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelError()); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrLibraryLoad, path, err)
	}
	envPath = path
	log.Info("ONNX Runtime initialised", "library", path, "version", ortgo.GetVersion())
	return nil
}

// sameFile reports whether a and b name the same file.
func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// probeCUDA checks that the CUDA provider can be appended to session options.
func probeCUDA(device int) error {
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		return err
	}
	defer func() { _ = opts.Destroy() }()
	return appendCUDA(opts, device)
}

// appendCUDA adds the CUDA execution provider for device to opts.
func appendCUDA(opts *ortgo.SessionOptions, device int) error {
	cuda, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer func() { _ = cuda.Destroy() }()
	if err := cuda.Update(map[string]string{"device_id": strconv.Itoa(device)}); err != nil {
		return err
	}
	return opts.AppendExecutionProviderCUDA(cuda)
}

// Provider returns the execution provider sessions actually use ("cpu" or
// "cuda"), after any fallback.
func (r *Runtime) Provider() string { return r.provider }

// Config returns the Runtime's configuration with defaults filled in.
func (r *Runtime) Config() Config { return r.cfg }

// sessionOptions builds options for one session.
func (r *Runtime) sessionOptions() (*ortgo.SessionOptions, error) {
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: session options: %w", ErrLibraryLoad, err)
	}
	if err := opts.SetIntraOpNumThreads(r.cfg.IntraOpThreads); err != nil {
		_ = opts.Destroy()
		return nil, fmt.Errorf("%w: intra-op threads: %w", ErrBadConfig, err)
	}
	if err := opts.SetInterOpNumThreads(r.cfg.InterOpThreads); err != nil {
		_ = opts.Destroy()
		return nil, fmt.Errorf("%w: inter-op threads: %w", ErrBadConfig, err)
	}
	if r.cfg.ParallelExecution {
		if err := opts.SetExecutionMode(ortgo.ExecutionModeParallel); err != nil {
			_ = opts.Destroy()
			return nil, fmt.Errorf("%w: parallel execution: %w", ErrBadConfig, err)
		}
	}
	if r.cfg.NoSpinning {
		for _, key := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
			if err := opts.AddSessionConfigEntry(key, "0"); err != nil {
				_ = opts.Destroy()
				return nil, fmt.Errorf("%w: %s: %w", ErrBadConfig, key, err)
			}
		}
	}
	if r.cfg.ProfilePrefix != "" {
		if err := opts.EnableProfiling(r.cfg.ProfilePrefix); err != nil {
			_ = opts.Destroy()
			return nil, fmt.Errorf("%w: profiling: %w", ErrBadConfig, err)
		}
	}
	if r.provider == ProviderCUDA {
		if err := appendCUDA(opts, r.cfg.DeviceID); err != nil {
			_ = opts.Destroy()
			return nil, fmt.Errorf("%w: device %d: %w", ErrCUDAUnavailable, r.cfg.DeviceID, err)
		}
	}
	return opts, nil
}
