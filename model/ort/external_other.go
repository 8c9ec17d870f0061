//go:build !unix

package ort

import (
	"fmt"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// addExternalInitializers hands in-memory weights to ONNX Runtime through
// its C API, which this package reaches with dlopen on unix systems only.
// Elsewhere a model with external initializers is refused with ErrBadModel;
// one saved with onnx.SaveExternal opens through NewSessionFromFile, which
// needs no such call.
func addExternalInitializers(_ *ortgo.SessionOptions, ext []onnx.ExternalTensor) (func(), error) {
	if len(ext) == 0 {
		return func() {}, nil
	}
	return nil, fmt.Errorf("%w: in-memory external initializers need a unix system; save the model with onnx.SaveExternal and open it with NewSessionFromFile", ErrBadModel)
}
