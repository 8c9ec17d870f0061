// Package chtest runs real ClickHouse for tests: the Debian
// clickhouse-server binary started on free loopback ports with a config in
// a temporary directory, an external server named by
// WSGRPO_TEST_CLICKHOUSE_DSN, or the chDB library.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/wsgrpo/wsgrpo/internal/proctest"
	"github.com/wsgrpo/wsgrpo/tracelog"
)

// Environment variables and paths the helpers look at.
const (
	// EnvDSN names an external server to test against instead of starting one.
	EnvDSN = "WSGRPO_TEST_CLICKHOUSE_DSN"
	// ServerBinary is where the Debian package installs the server.
	ServerBinary = "/usr/sbin/clickhouse-server"
	// EnvDataDir names a directory (e.g. /dev/shm, a tmpfs) under which
	// started servers and embedded stores keep their data instead of the
	// test's temporary directory. ClickHouse 18.16 writes two files per column for every
	// INSERT, so file creation on a busy disk can dominate insert time.
	EnvDataDir = "WSGRPO_TEST_CLICKHOUSE_DATA"
	// EnvExtraConfig holds XML elements added to a started server's
	// config.xml, for measuring server settings, e.g.
	// <compression><case><method>none</method></case></compression>.
	EnvExtraConfig = "WSGRPO_TEST_CLICKHOUSE_EXTRA_CONFIG"
)

// Server is a ClickHouse server for one test.
type Server struct {
	// DSN reaches a database created for this test alone.
	DSN string

	dir      string
	port     int
	env      []string
	proc     *proctest.Process
	external bool
}

// Options configure a server StartWith starts.
type Options struct {
	// Users are extra users files (their text), merged into the server's
	// users configuration (users.d): users, profiles, quotas. The root
	// element may be <clickhouse> or <yandex>; it is renamed to what the
	// installed server reads.
	Users []string
	// Env is added to the server process's environment (NAME=value), for
	// settings a users file reads with from_env.
	Env []string
}

// Start returns a server with a fresh database: the one WSGRPO_TEST_CLICKHOUSE_DSN
// names, or a clickhouse-server started for this test and killed in
// t.Cleanup. It skips the test, saying why, when neither is available.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		s := &Server{external: true}
		s.DSN = newDatabase(tb, dsn)
		return s
	}
	if _, err := os.Stat(ServerBinary); err != nil {
		tb.Skipf("no ClickHouse server: %s is missing and %s is unset (apt-get install clickhouse-server, or set %s)", ServerBinary, EnvDSN, EnvDSN)
	}
	return StartWith(tb, Options{})
}

// StartWith starts a clickhouse-server for this test with o's users and
// environment, and returns it with a fresh database (DSN as the default
// user). It skips the test when the server binary is missing; an external
// server (WSGRPO_TEST_CLICKHOUSE_DSN) cannot take the options.
func StartWith(tb testing.TB, o Options) *Server {
	tb.Helper()
	if _, err := os.Stat(ServerBinary); err != nil {
		tb.Skipf("no ClickHouse server: %s is missing (apt-get install clickhouse-server); this test configures the server's users, so %s cannot stand in", ServerBinary, EnvDSN)
	}
	s := &Server{dir: dataDir(tb), port: proctest.FreePort(tb), env: o.Env}
	if err := s.writeConfig(); err != nil {
		tb.Fatal(err)
	}
	if err := s.writeUsers(o.Users); err != nil {
		tb.Fatal(err)
	}
	s.startProcess(tb)
	tb.Cleanup(func() { s.kill() })
	s.DSN = newDatabase(tb, fmt.Sprintf("clickhouse://127.0.0.1:%d/default", s.port))
	return s
}

// External reports whether the server was not started by Start (so Stop
// and Restart are unavailable).
func (s *Server) External() bool { return s.external }

// Stop kills the server process (an abrupt outage) and waits until its port
// refuses connections.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if s.external {
		tb.Skip("cannot stop an external server (" + EnvDSN + ")")
	}
	s.kill()
}

// Restart starts the stopped server again on the same port and data.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if s.external {
		tb.Skip("cannot restart an external server (" + EnvDSN + ")")
	}
	s.startProcess(tb)
}

// CPU returns the user plus system time the server process (all its
// threads: queries and background merges) has used so far, read from
// /proc. ok is false for an external or stopped server, or without /proc.
func (s *Server) CPU() (cpu time.Duration, ok bool) {
	if s.external || s.proc == nil {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.proc.Pid()))
	if err != nil {
		return 0, false
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime and stime are fields 14 and 15, in clock ticks (100 per
	// second on Linux).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// kill kills the server process, if running, and reaps it.
func (s *Server) kill() {
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
}

func (s *Server) startProcess(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command(ServerBinary, "--config-file="+filepath.Join(s.dir, "config.xml"))
	cmd.Dir = s.dir
	// Debian's 18.16 uses the system allocator, which keeps returning memory
	// to the kernel: most of its CPU went to page faults (see
	// docs/benchmarks/tracelog.md). Keeping freed pages saves about a
	// quarter of the server's CPU in tests.
	cmd.Env = append(append(os.Environ(), "MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1"), s.env...)
	proc, err := proctest.Start(cmd, filepath.Join(s.dir, "stdout.log"))
	if err != nil {
		tb.Fatalf("start %s: %v", ServerBinary, err)
	}
	if err := proc.WaitReady(30*time.Second, s.ready); err != nil {
		errLog, _ := os.ReadFile(filepath.Join(s.dir, "err.log"))
		tb.Fatalf("clickhouse-server did not become ready: %v\n%s", err, tail(errLog, 2000))
	}
	s.proc = proc
}

// ready reports whether the server answers a ping.
func (s *Server) ready() error {
	opts := &clickhouse.Options{Addr: []string{"127.0.0.1:" + strconv.Itoa(s.port)}, DialTimeout: time.Second}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return conn.Ping(ctx)
}

func (s *Server) writeConfig() error {
	cfg := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>%[1]s/server.log</log><errorlog>%[1]s/err.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
%[3]s
</yandex>
`, s.dir, s.port, os.Getenv(EnvExtraConfig))
	users := `<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
`
	if err := os.WriteFile(filepath.Join(s.dir, "config.xml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "users.xml"), []byte(users), 0o644)
}

// Port returns the native-protocol port of a server Start or StartWith
// started (0 for an external one), for DSNs of other users.
func (s *Server) Port() int { return s.port }

// writeUsers writes each users file into users.d, with the root element
// the server reads (<yandex> for the Debian 18.16 server).
func (s *Server) writeUsers(files []string) error {
	if len(files) == 0 {
		return nil
	}
	dir := filepath.Join(s.dir, "users.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, f := range files {
		f = strings.NewReplacer("<clickhouse>", "<yandex>", "</clickhouse>", "</yandex>").Replace(f)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.xml", i)), []byte(f), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// newDatabase creates a uniquely named database on the server dsn points at
// and returns a DSN for it; an external server's database is dropped in
// t.Cleanup.
func newDatabase(tb testing.TB, dsn string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("bad DSN %q: %v", dsn, err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	db := "wsgrpo_test_" + hex.EncodeToString(rnd[:])
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("bad DSN %q: %v", dsn, err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := clickhouse.Open(opts)
		if err != nil {
			return
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	})
	u.Path = "/" + db
	return u.String()
}

// Library returns the path of libchdb.so, or skips the test saying how to
// get it.
func Library(tb testing.TB) string {
	tb.Helper()
	p := tracelog.LibraryPath()
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("no chDB library at %s (run `make setup`, or set WSGRPO_CHDB_LIB): %v", p, err)
	}
	return p
}

// Backend is one way to open a store in a test.
type Backend struct {
	Name string
	// Open returns a fresh, unmigrated store configuration for one test;
	// srv is non-nil for the server backend.
	Open func(tb testing.TB) (cfg tracelog.Config, srv *Server)
}

// Backends lists the server and embedded backends, for table tests.
func Backends() []Backend {
	return []Backend{
		{Name: tracelog.BackendServer, Open: func(tb testing.TB) (tracelog.Config, *Server) {
			tb.Helper()
			s := Start(tb)
			return tracelog.Config{DSN: s.DSN}, s
		}},
		{Name: tracelog.BackendEmbedded, Open: func(tb testing.TB) (tracelog.Config, *Server) {
			tb.Helper()
			lib := Library(tb)
			return tracelog.Config{Dir: filepath.Join(dataDir(tb), "tracelog"), Lib: lib}, nil
		}},
	}
}

// dataDir returns a fresh directory for one test's data: under
// $WSGRPO_TEST_CLICKHOUSE_DATA when set, else t.TempDir(). Removed in
// t.Cleanup.
func dataDir(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvDataDir)
	if base == "" {
		return tb.TempDir()
	}
	d, err := os.MkdirTemp(base, "wsgrpo-clickhouse-") //nolint:usetesting // under the user's chosen base, not the test's temp dir
	if err != nil {
		tb.Fatalf("%s: %v", EnvDataDir, err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
