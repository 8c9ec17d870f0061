//go:build !unix

package ort

import (
	"fmt"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// addExternalInitializers is not implemented where the library cannot be
// reached through dlopen.
func addExternalInitializers(_ *ortgo.SessionOptions, ext []onnx.ExternalTensor) (func(), error) {
	if len(ext) == 0 {
		return func() {}, nil
	}
	return nil, fmt.Errorf("%w: in-memory external initializers need a unix system", ErrBadModel)
}
