// Package chdb is a minimal binding of libchdb's C API (the ClickHouse engine
// as a shared library), loaded at run time with purego so that a binary built
// with it starts, and reports a clear error, when the library is absent.
//
// Only the calls the trajectory log needs are bound: connect, close, a
// binary-safe query and the result accessors. libchdb serves one storage path
// per process; Connect refuses a second path while a connection to another
// one is open.
package chdb

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Errors of this package, tested with errors.Is.
var (
	// ErrLibrary is returned when libchdb cannot be loaded or lacks a symbol.
	ErrLibrary = errors.New("libchdb unavailable")
	// ErrBusy is returned by Connect for a path other than the one this
	// process already has open: libchdb serves one path per process.
	ErrBusy = errors.New("libchdb already serves another path in this process")
	// ErrQuery is wrapped by every error libchdb reports for a statement.
	ErrQuery = errors.New("chdb query failed")
	// ErrClosed is returned for a query on a closed connection.
	ErrClosed = errors.New("chdb connection closed")
	// ErrConnect is returned by Connect when the library is loaded but the
	// engine cannot open the data directory, most often because another
	// process holds it (the engine locks <dir>/status).
	ErrConnect = errors.New("chdb cannot open the data directory")
)

// lib holds the bound C functions.
type lib struct {
	setSignalHandlers func(enabled int32)
	connect           func(argc int32, argv **byte) unsafe.Pointer
	closeConn         func(conn unsafe.Pointer)
	queryN            func(conn unsafe.Pointer, q *byte, qlen uintptr, f *byte, flen uintptr) unsafe.Pointer
	destroyResult     func(res unsafe.Pointer)
	resultBuffer      func(res unsafe.Pointer) unsafe.Pointer
	resultLength      func(res unsafe.Pointer) uintptr
	resultError       func(res unsafe.Pointer) string
	resultRowsRead    func(res unsafe.Pointer) uint64
	resultRowsWritten func(res unsafe.Pointer) uint64
	streamInsert      func(conn unsafe.Pointer, q string, f string) unsafe.Pointer
	streamAppend      func(st unsafe.Pointer, data *byte, n uintptr) int32
	streamDone        func(st unsafe.Pointer) unsafe.Pointer
	streamInsertError func(st unsafe.Pointer) string
	destroyStream     func(st unsafe.Pointer)
}

var (
	loadMu   sync.Mutex
	loaded   *lib
	loadPath string

	pathMu    sync.Mutex
	openPath  string
	openCount int
)

// Load opens libchdb at path once per process. Later calls with the same
// path return at once; a different path after a successful load is refused,
// since a process can hold only one copy of the engine.
func Load(path string) error {
	_, err := load(path)
	return err
}

func load(path string) (l *lib, err error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if loaded != nil {
		if path != loadPath {
			return nil, fmt.Errorf("%w: %s already loaded, cannot also load %s", ErrLibrary, loadPath, path)
		}
		return loaded, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLibrary, err)
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("%w: dlopen %s: %v", ErrLibrary, path, err)
	}
	defer func() {
		// RegisterLibFunc panics on a missing symbol (an old library).
		if r := recover(); r != nil {
			l, err = nil, fmt.Errorf("%w: %s: %v", ErrLibrary, path, r)
		}
	}()
	l = &lib{}
	purego.RegisterLibFunc(&l.setSignalHandlers, h, "chdb_set_signal_handlers_enabled")
	purego.RegisterLibFunc(&l.connect, h, "chdb_connect")
	purego.RegisterLibFunc(&l.closeConn, h, "chdb_close_conn")
	purego.RegisterLibFunc(&l.queryN, h, "chdb_query_n")
	purego.RegisterLibFunc(&l.destroyResult, h, "chdb_destroy_query_result")
	purego.RegisterLibFunc(&l.resultBuffer, h, "chdb_result_buffer")
	purego.RegisterLibFunc(&l.resultLength, h, "chdb_result_length")
	purego.RegisterLibFunc(&l.resultError, h, "chdb_result_error")
	purego.RegisterLibFunc(&l.resultRowsRead, h, "chdb_result_rows_read")
	purego.RegisterLibFunc(&l.resultRowsWritten, h, "chdb_result_rows_written")
	purego.RegisterLibFunc(&l.streamInsert, h, "chdb_stream_insert")
	purego.RegisterLibFunc(&l.streamAppend, h, "chdb_stream_append")
	purego.RegisterLibFunc(&l.streamDone, h, "chdb_stream_done")
	purego.RegisterLibFunc(&l.streamInsertError, h, "chdb_stream_insert_error")
	purego.RegisterLibFunc(&l.destroyStream, h, "chdb_destroy_insert_stream")
	// The Go runtime owns the process's signals (preemption, nil checks,
	// profiling); the engine must not install its own handlers.
	l.setSignalHandlers(0)
	loaded, loadPath = l, path
	return l, nil
}

// Conn is one connection to the engine. Its methods are safe for concurrent
// use; statements run one at a time.
type Conn struct {
	mu   sync.Mutex
	lib  *lib
	ptr  unsafe.Pointer // chdb_connection*
	path string
}

// Connect loads the library at libPath and opens a connection whose data
// lives in dir (created when missing). extra holds more engine arguments
// such as "--max_threads=2".
func Connect(libPath, dir string, extra ...string) (*Conn, error) {
	l, err := load(libPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chdb: data directory: %w", err)
	}
	pathMu.Lock()
	defer pathMu.Unlock()
	if openCount > 0 && openPath != dir {
		return nil, fmt.Errorf("%w: open at %s, asked for %s", ErrBusy, openPath, dir)
	}
	args := append([]string{"clickhouse", "--path=" + dir}, extra...)
	cargs := make([][]byte, len(args))
	argv := make([]*byte, len(args)+1)
	for i, a := range args {
		cargs[i] = append([]byte(a), 0)
		argv[i] = &cargs[i][0]
	}
	p := l.connect(int32(len(args)), &argv[0])
	runtime.KeepAlive(cargs)
	runtime.KeepAlive(argv)
	if p == nil || *(*unsafe.Pointer)(p) == nil {
		return nil, fmt.Errorf("%w %s: chdb_connect failed (is another process using it?)", ErrConnect, dir)
	}
	openPath = dir
	openCount++
	return &Conn{lib: l, ptr: p, path: dir}, nil
}

// Result is the output of one statement, copied out of the engine.
type Result struct {
	Data        []byte
	RowsRead    uint64
	RowsWritten uint64
}

// Query runs one statement (which may carry inline data after a FORMAT
// clause, binary included) and returns its output in format (e.g.
// "JSONCompact"; "" for the engine default).
func (c *Conn) Query(query []byte, format string) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr == nil {
		return Result{}, ErrClosed
	}
	if len(query) == 0 {
		return Result{}, fmt.Errorf("%w: empty statement", ErrQuery)
	}
	f := append([]byte(format), 0)
	res := c.lib.queryN(*(*unsafe.Pointer)(c.ptr), &query[0], uintptr(len(query)), &f[0], uintptr(len(format)))
	runtime.KeepAlive(query)
	runtime.KeepAlive(f)
	if res == nil {
		return Result{}, fmt.Errorf("%w: no result", ErrQuery)
	}
	defer c.lib.destroyResult(res)
	if msg := c.lib.resultError(res); msg != "" {
		return Result{}, fmt.Errorf("%w: %s", ErrQuery, msg)
	}
	out := Result{RowsRead: c.lib.resultRowsRead(res), RowsWritten: c.lib.resultRowsWritten(res)}
	if n := c.lib.resultLength(res); n > 0 {
		if buf := c.lib.resultBuffer(res); buf != nil {
			out.Data = append([]byte(nil), unsafe.Slice((*byte)(buf), n)...)
		}
	}
	return out, nil
}

// appendChunk is the most data handed to the engine in one append: one
// large append parses measurably slower than the same bytes in chunks.
var appendChunk = 1 << 20

// Insert runs an INSERT statement (without FORMAT clause or data) and
// streams data, encoded in format (e.g. "RowBinary"), to it. The data never
// passes through the SQL parser, so any bytes are safe: inline data after
// FORMAT in a query is split at semicolons by the engine's multi-statement
// parser.
func (c *Conn) Insert(query, format string, data []byte) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr == nil {
		return Result{}, ErrClosed
	}
	st := c.lib.streamInsert(*(*unsafe.Pointer)(c.ptr), query, format)
	if st == nil {
		return Result{}, fmt.Errorf("%w: chdb_stream_insert returned no stream", ErrQuery)
	}
	defer c.lib.destroyStream(st)
	if msg := c.lib.streamInsertError(st); msg != "" {
		return Result{}, fmt.Errorf("%w: %s", ErrQuery, msg)
	}
	for off := 0; off < len(data); off += appendChunk {
		chunk := data[off:min(off+appendChunk, len(data))]
		rc := c.lib.streamAppend(st, &chunk[0], uintptr(len(chunk)))
		runtime.KeepAlive(chunk)
		if rc != 0 {
			msg := c.lib.streamInsertError(st)
			return Result{}, fmt.Errorf("%w: append: %s", ErrQuery, msg)
		}
	}
	res := c.lib.streamDone(st)
	if res == nil {
		return Result{}, fmt.Errorf("%w: chdb_stream_done returned no result", ErrQuery)
	}
	defer c.lib.destroyResult(res)
	if msg := c.lib.resultError(res); msg != "" {
		return Result{}, fmt.Errorf("%w: %s", ErrQuery, msg)
	}
	return Result{RowsRead: c.lib.resultRowsRead(res), RowsWritten: c.lib.resultRowsWritten(res)}, nil
}

// Close closes the connection; later queries return ErrClosed. Closing
// twice is harmless.
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr == nil {
		return
	}
	c.lib.closeConn(c.ptr)
	c.ptr = nil
	pathMu.Lock()
	openCount--
	pathMu.Unlock()
}
