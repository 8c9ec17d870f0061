package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/internal/diskfull"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// StoreDir holds JetStream's file storage. Required: the run directory,
	// so that a restarted server recovers every stream.
	StoreDir string
	// Listen makes the server accept TCP clients on Host:Port (other
	// processes, `wsgrpo stage --nats URL`, nats bench). Without it the
	// server opens no port and Connect uses an in-process connection.
	Listen bool
	// Host is the listen address (default 127.0.0.1).
	Host string
	// Port is the listen port; 0 picks a free one.
	Port int
	// MaxPayload is the largest message the server accepts (default
	// DefaultMaxPayload).
	MaxPayload int32
	// MaxMemory and MaxStore bound JetStream's memory and file storage
	// (0: the server's defaults, a share of RAM and disk).
	MaxMemory, MaxStore int64
	// Logger receives the server's log lines (nil: discarded).
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept clients (default
	// 10 s).
	ReadyTimeout time.Duration
}

// Server is an embedded nats-server with JetStream enabled.
type Server struct {
	ns  *server.Server
	cfg ServerConfig
	// full is the first log line in which the server said that its store
	// ran out of space (StorageErr).
	full atomic.Pointer[string]
}

// StartServer starts nats-server in this process with JetStream and file
// storage under cfg.StoreDir, and waits until it accepts clients.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("%w: ServerConfig.StoreDir is required", ErrInvalidConfig)
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.MaxPayload < 0 || cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("%w: MaxPayload %d, Port %d", ErrInvalidConfig, cfg.MaxPayload, cfg.Port)
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName:         "wsgrpo-embedded",
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		MaxPayload:         cfg.MaxPayload,
		// The per-client pending buffer must hold several maximal messages.
		MaxPending: max(int64(cfg.MaxPayload)*8, 64<<20),
		NoSigs:     true,
		DontListen: !cfg.Listen,
		Host:       cfg.Host,
		Port:       cfg.Port,
	}
	if cfg.Listen && cfg.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrServer, err)
	}
	s := &Server{ns: ns, cfg: cfg}
	// The server's log is always read: a file store that runs out of disk
	// says so only there (its publishers get no reply).
	l := slog.New(slog.DiscardHandler)
	if cfg.Logger != nil {
		l = cfg.Logger.With("component", "nats-server")
	}
	ns.SetLoggerV2(slogAdapter{l: l, watch: s.watchLog}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		if err := s.StorageErr(); err != nil {
			return nil, fmt.Errorf("%w: not ready after %s: %w", ErrServer, cfg.ReadyTimeout, err)
		}
		return nil, fmt.Errorf("%w: not ready after %s (store dir %s)", ErrServer, cfg.ReadyTimeout, cfg.StoreDir)
	}
	return s, nil
}

// watchLog records the first error or warning line of the server that
// says a write failed for want of disk (ENOSPC, EDQUOT): the file store
// that hit it takes no more writes until the server restarts.
func (s *Server) watchLog(line string) {
	if s.full.Load() != nil {
		return
	}
	l := strings.ToLower(line)
	if strings.Contains(l, "no space left on device") || strings.Contains(l, "disk quota exceeded") {
		s.full.CompareAndSwap(nil, &line)
	}
}

// StorageErr returns nil, or a *StorageFullError wrapping ErrStorageFull
// when the server's store is out of space: a write failed for want of
// disk (what the server logged then; such a file store takes no writes
// until the server restarts, and its publishers get no reply at all), or
// the storage in use is above the server's max_storage (max_memory for
// memory streams), so that it refuses every write until some is freed.
// The error names the store directory and the space free there. A runner
// asks it (RunnerConfig.StorageErr) when a write fails.
func (s *Server) StorageErr() error {
	if line := s.full.Load(); line != nil {
		return diskfull.NewAt(storeWhat, s.cfg.StoreDir, -1, errors.New("nats-server: "+*line))
	}
	v, err := s.ns.Varz(nil)
	if err != nil || v.JetStream.Config == nil || v.JetStream.Stats == nil {
		return nil
	}
	c, st := v.JetStream.Config, v.JetStream.Stats
	for _, l := range []struct {
		what, key   string
		used, limit int64
	}{
		{"file storage", "max_storage", int64(st.Store), c.MaxStore},
		{"memory storage", "max_memory", int64(st.Memory), c.MaxMemory},
	} {
		if l.limit > 0 && l.used > l.limit {
			// Full by its limit, not its disk: the room is the limit's.
			e := diskfull.New(storeWhat, s.cfg.StoreDir, -1, fmt.Errorf("nats-server: %s in use (%s) is above the server's %s of %s",
				l.what, diskfull.Bytes(l.used), l.key, diskfull.Bytes(l.limit)))
			e.Free, e.Size = 0, l.limit
			return e
		}
	}
	return nil
}

// StoreDir is the directory of the server's JetStream file store.
func (s *Server) StoreDir() string { return s.cfg.StoreDir }

// URL returns the client URL (nats://host:port), or "" when the server does
// not listen.
func (s *Server) URL() string {
	if !s.cfg.Listen {
		return ""
	}
	return s.ns.ClientURL()
}

// Port returns the TCP port the server listens on, or 0.
func (s *Server) Port() int {
	if !s.cfg.Listen {
		return 0
	}
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Connect opens a client connection to this server: in-process when it does
// not listen, over TCP otherwise. Extra options are applied after the
// defaults of Connect.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if s.cfg.Listen {
		return Connect(s.URL(), opts...)
	}
	all := append(clientOptions(), nats.InProcessServer(s.ns))
	nc, err := nats.Connect("", append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect in-process: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped; file storage
// stays on disk for the next start.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// Connect opens a client connection to the NATS server at url with the
// defaults every wsgrpo process uses: reconnect forever, so that a server
// restart pauses the stages instead of stopping them.
func Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	if url == "" {
		return nil, fmt.Errorf("%w: empty NATS URL", ErrInvalidConfig)
	}
	nc, err := nats.Connect(url, append(clientOptions(), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	return nc, nil
}

func clientOptions() []nats.Option {
	return []nats.Option{
		nats.Name("wsgrpo"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.ReconnectBufSize(64 << 20),
	}
}

// NewJetStream returns the JetStream API of nc.
func NewJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// slogAdapter forwards nats-server log lines to slog, and passes its
// errors and warnings to watch.
type slogAdapter struct {
	l     *slog.Logger
	watch func(line string)
}

func (a slogAdapter) log(level slog.Level, format string, v []any) {
	watched := level >= slog.LevelWarn && a.watch != nil
	if !watched && !a.l.Enabled(context.Background(), level) {
		return
	}
	line := fmt.Sprintf(format, v...)
	if watched {
		a.watch(line)
	}
	a.l.Log(context.Background(), level, line)
}

// Noticef logs at info level.
func (a slogAdapter) Noticef(format string, v ...any) { a.log(slog.LevelInfo, format, v) }

// Warnf logs at warn level.
func (a slogAdapter) Warnf(format string, v ...any) { a.log(slog.LevelWarn, format, v) }

// Fatalf logs at error level; the server decides what is fatal.
func (a slogAdapter) Fatalf(format string, v ...any) { a.log(slog.LevelError, format, v) }

// Errorf logs at error level.
func (a slogAdapter) Errorf(format string, v ...any) { a.log(slog.LevelError, format, v) }

// Debugf logs at debug level.
func (a slogAdapter) Debugf(format string, v ...any) { a.log(slog.LevelDebug, format, v) }

// Tracef logs at debug level.
func (a slogAdapter) Tracef(format string, v ...any) { a.log(slog.LevelDebug, format, v) }

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrObjectNotFound) ||
		errors.Is(err, jetstream.ErrMsgNotFound)
}
