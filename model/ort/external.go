//go:build unix

package ort

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct OrtStatus OrtStatus;
typedef struct OrtValue OrtValue;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtSessionOptions OrtSessionOptions;

// The head of OrtApiBase (onnxruntime_c_api.h).
typedef struct {
	const void* (*GetApi)(uint32_t version);
	const char* (*GetVersionString)(void);
} wsgApiBase;

// Indices of the functions used here in the OrtApi function table
// (onnxruntime_c_api.h; ONNX Runtime only ever appends to the table, so an
// index, once published, never changes).
enum {
	idxGetErrorMessage = 2,
	idxCreateTensorWithDataAsOrtValue = 49,
	idxCreateCpuMemoryInfo = 69,
	idxReleaseStatus = 93,
	idxReleaseMemoryInfo = 94,
	idxReleaseValue = 96,
	idxAddExternalInitializers = 210,
};

// wsgAPIVersion is the OrtApi version requested: 12, the first with
// AddExternalInitializers.
#define wsgAPIVersion 12

#define WSG_FN(api, i) (((void* const*)(api))[i])

// wsgGetAPI returns the OrtApi table of the already loaded library at path,
// or NULL.
static const void* wsgGetAPI(const char* path) {
	void* h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) {
		return NULL;
	}
	const wsgApiBase* (*base)(void) = (const wsgApiBase* (*)(void))dlsym(h, "OrtGetApiBase");
	const void* api = base == NULL ? NULL : base()->GetApi(wsgAPIVersion);
	dlclose(h); // drops the reference RTLD_NOLOAD took; the library stays loaded
	return api;
}

static const char* wsgErrorMessage(const void* api, const OrtStatus* s) {
	return ((const char* (*)(const OrtStatus*))WSG_FN(api, idxGetErrorMessage))(s);
}

static void wsgReleaseStatus(const void* api, OrtStatus* s) {
	((void (*)(OrtStatus*))WSG_FN(api, idxReleaseStatus))(s);
}

static OrtStatus* wsgCreateCpuMemoryInfo(const void* api, OrtMemoryInfo** out) {
	// OrtArenaAllocator (1), OrtMemTypeDefault (0), as onnxruntime_go does.
	return ((OrtStatus* (*)(int, int, OrtMemoryInfo**))WSG_FN(api, idxCreateCpuMemoryInfo))(1, 0, out);
}

static void wsgReleaseMemoryInfo(const void* api, OrtMemoryInfo* m) {
	((void (*)(OrtMemoryInfo*))WSG_FN(api, idxReleaseMemoryInfo))(m);
}

static OrtStatus* wsgCreateTensor(const void* api, const OrtMemoryInfo* info, void* data, size_t len,
		const int64_t* shape, size_t rank, int type, OrtValue** out) {
	return ((OrtStatus* (*)(const OrtMemoryInfo*, void*, size_t, const int64_t*, size_t, int, OrtValue**))
		WSG_FN(api, idxCreateTensorWithDataAsOrtValue))(info, data, len, shape, rank, type, out);
}

static void wsgReleaseValue(const void* api, OrtValue* v) {
	((void (*)(OrtValue*))WSG_FN(api, idxReleaseValue))(v);
}

static OrtStatus* wsgAddExternalInitializers(const void* api, OrtSessionOptions* o,
		const char* const* names, const OrtValue* const* values, size_t n) {
	return ((OrtStatus* (*)(OrtSessionOptions*, const char* const*, const OrtValue* const*, size_t))
		WSG_FN(api, idxAddExternalInitializers))(o, names, values, n);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// api is the OrtApi function table of the loaded library, looked up once.
var api struct {
	once sync.Once
	p    unsafe.Pointer
	err  error
}

// ortAPI returns the OrtApi table of the library the environment was
// created from (initEnv has run).
func ortAPI() (unsafe.Pointer, error) {
	api.once.Do(func() {
		envMu.Lock()
		path := envPath
		envMu.Unlock()
		if path == "" {
			api.err = fmt.Errorf("%w: environment not initialised", ErrLibraryLoad)
			return
		}
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		api.p = unsafe.Pointer(C.wsgGetAPI(cpath))
		if api.p == nil {
			api.err = fmt.Errorf("%w: %s: no OrtApi version %d", ErrLibraryLoad, path, C.wsgAPIVersion)
		}
	})
	return api.p, api.err
}

// statusError converts an OrtStatus to an error and releases it.
func statusError(p unsafe.Pointer, s *C.OrtStatus) error {
	if s == nil {
		return nil
	}
	msg := C.GoString(C.wsgErrorMessage(p, s))
	C.wsgReleaseStatus(p, s)
	return errors.New(msg)
}

// rawOptions returns the OrtSessionOptions pointer inside o, which
// onnxruntime_go does not export: its SessionOptions is a struct of that
// one pointer, which this checks before reading it.
func rawOptions(o *ortgo.SessionOptions) (*C.OrtSessionOptions, error) {
	t := reflect.TypeFor[ortgo.SessionOptions]()
	if t.NumField() != 1 || t.Field(0).Type.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("%w: onnxruntime_go's SessionOptions is no longer one pointer", ErrLibraryLoad)
	}
	p := *(**C.OrtSessionOptions)(unsafe.Pointer(o))
	if p == nil {
		return nil, fmt.Errorf("%w: session options released", ErrLibraryLoad)
	}
	return p, nil
}

// addExternalInitializers hands the data of ext to opts through
// OrtApi::AddExternalInitializers: each tensor becomes an OrtValue over its
// Go memory (not copied), which replaces the external-data initializer of
// that name when a session is created with opts. release frees the
// OrtValues; call it after the session is created, which copies the data.
// The tensors' memory must stay untouched and reachable until then.
func addExternalInitializers(opts *ortgo.SessionOptions, ext []onnx.ExternalTensor) (release func(), err error) {
	if len(ext) == 0 {
		return func() {}, nil
	}
	p, err := ortAPI()
	if err != nil {
		return nil, err
	}
	o, err := rawOptions(opts)
	if err != nil {
		return nil, err
	}
	var info *C.OrtMemoryInfo
	if err := statusError(p, C.wsgCreateCpuMemoryInfo(p, &info)); err != nil {
		return nil, fmt.Errorf("%w: memory info: %w", ErrLibraryLoad, err)
	}
	defer C.wsgReleaseMemoryInfo(p, info)
	n := len(ext)
	ptrSize := C.size_t(unsafe.Sizeof(uintptr(0)))
	cnames := (*[1 << 30]*C.char)(C.calloc(C.size_t(n), ptrSize))[:n:n]
	cvalues := (*[1 << 30]*C.OrtValue)(C.calloc(C.size_t(n), ptrSize))[:n:n]
	release = func() {
		for i := range n {
			if cvalues[i] != nil {
				C.wsgReleaseValue(p, cvalues[i])
			}
			C.free(unsafe.Pointer(cnames[i]))
		}
		C.free(unsafe.Pointer(unsafe.SliceData(cvalues)))
		C.free(unsafe.Pointer(unsafe.SliceData(cnames)))
	}
	for i, e := range ext {
		t := e.Tensor
		raw := t.RawData()
		if len(raw) == 0 || int64(len(raw)) != e.Place.Length {
			release()
			return nil, fmt.Errorf("%w: external initializer %q: %d bytes in memory, %d in the model",
				ErrBadModel, t.Name, len(raw), e.Place.Length)
		}
		cnames[i] = C.CString(t.Name)
		var shape *C.int64_t
		if len(t.Dims) > 0 {
			shape = (*C.int64_t)(unsafe.Pointer(unsafe.SliceData(t.Dims)))
		}
		s := C.wsgCreateTensor(p, info, unsafe.Pointer(unsafe.SliceData(raw)), C.size_t(len(raw)),
			shape, C.size_t(len(t.Dims)), C.int(t.DataType), &cvalues[i])
		if err := statusError(p, s); err != nil {
			release()
			return nil, fmt.Errorf("%w: external initializer %q: %w", ErrBadModel, t.Name, err)
		}
	}
	s := C.wsgAddExternalInitializers(p, o, unsafe.SliceData(cnames), unsafe.SliceData(cvalues), C.size_t(n))
	if err := statusError(p, s); err != nil {
		release()
		return nil, fmt.Errorf("%w: add external initializers: %w", ErrBadModel, err)
	}
	return release, nil
}
