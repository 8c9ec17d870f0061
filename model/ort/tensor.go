package ort

import (
	"fmt"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/wsgrpo/wsgrpo/model/onnx"
)

// Tensor is a dense Go tensor exchanged with a Session. Type selects which
// one slice holds the data (row-major, len = product of Shape, 1 for a
// scalar with an empty Shape): F32 for onnx.Float, F64 for onnx.Double, I64
// for onnx.Int64, I32 for onnx.Int32, Bool for onnx.Bool.
type Tensor struct {
	Type  onnx.DataType
	Shape []int64
	F32   []float32
	F64   []float64
	I64   []int64
	I32   []int32
	Bool  []bool
}

// F32Tensor returns a float32 tensor of the given shape over data (not copied).
func F32Tensor(data []float32, shape ...int64) *Tensor {
	return &Tensor{Type: onnx.Float, Shape: shape, F32: data}
}

// F64Tensor returns a float64 tensor of the given shape over data (not copied).
func F64Tensor(data []float64, shape ...int64) *Tensor {
	return &Tensor{Type: onnx.Double, Shape: shape, F64: data}
}

// I64Tensor returns an int64 tensor of the given shape over data (not copied).
func I64Tensor(data []int64, shape ...int64) *Tensor {
	return &Tensor{Type: onnx.Int64, Shape: shape, I64: data}
}

// I32Tensor returns an int32 tensor of the given shape over data (not copied).
func I32Tensor(data []int32, shape ...int64) *Tensor {
	return &Tensor{Type: onnx.Int32, Shape: shape, I32: data}
}

// BoolTensor returns a bool tensor of the given shape over data (not copied).
func BoolTensor(data []bool, shape ...int64) *Tensor {
	return &Tensor{Type: onnx.Bool, Shape: shape, Bool: data}
}

// Len returns the number of elements in the slice that Type selects, or -1
// for an unsupported Type.
func (t *Tensor) Len() int {
	switch t.Type {
	case onnx.Float:
		return len(t.F32)
	case onnx.Double:
		return len(t.F64)
	case onnx.Int64:
		return len(t.I64)
	case onnx.Int32:
		return len(t.I32)
	case onnx.Bool:
		return len(t.Bool)
	}
	return -1
}

// check verifies that t is self-consistent: a supported type, only the
// matching slice used, and as many elements as Shape says. Errors wrap
// ErrBadInput.
func (t *Tensor) check() error {
	if t == nil {
		return fmt.Errorf("%w: nil tensor", ErrBadInput)
	}
	n := t.Len()
	if n < 0 {
		return fmt.Errorf("%w: unsupported element type %s", ErrBadInput, t.Type)
	}
	if other := len(t.F32) + len(t.F64) + len(t.I64) + len(t.I32) + len(t.Bool) - n; other != 0 {
		return fmt.Errorf("%w: %s tensor also carries %d elements in another slice", ErrBadInput, t.Type, other)
	}
	want, err := onnx.NumElements(t.Shape)
	if err != nil {
		return fmt.Errorf("%w: shape %v: %w", ErrBadInput, t.Shape, err)
	}
	if n != want {
		return fmt.Errorf("%w: shape %v needs %d elements, got %d", ErrBadInput, t.Shape, want, n)
	}
	return nil
}

// toValue wraps t's data (not copied) in an ONNX Runtime value; the caller
// destroys it. t must have passed check.
func (t *Tensor) toValue() (ortgo.Value, error) {
	switch t.Type {
	case onnx.Float:
		return newValue(t.Shape, t.F32)
	case onnx.Double:
		return newValue(t.Shape, t.F64)
	case onnx.Int64:
		return newValue(t.Shape, t.I64)
	case onnx.Int32:
		return newValue(t.Shape, t.I32)
	case onnx.Bool:
		return newValue(t.Shape, t.Bool)
	}
	return nil, fmt.Errorf("%w: unsupported element type %s", ErrBadInput, t.Type)
}

func newValue[T ortgo.TensorData](shape []int64, data []T) (ortgo.Value, error) {
	if len(shape) == 0 {
		return ortgo.NewScalar(data[0])
	}
	return ortgo.NewTensor(ortgo.NewShape(shape...), data)
}

// newScalarOutput preallocates a rank-0 output of type dt. ONNX Runtime's Go
// binding cannot convert rank-0 outputs it allocates itself, so outputs
// declared as scalars are bound to a preallocated value instead. It returns
// nil for types Tensor does not carry.
func newScalarOutput(dt onnx.DataType) (ortgo.Value, error) {
	switch dt {
	case onnx.Float:
		return ortgo.NewEmptyScalar[float32]()
	case onnx.Double:
		return ortgo.NewEmptyScalar[float64]()
	case onnx.Int64:
		return ortgo.NewEmptyScalar[int64]()
	case onnx.Int32:
		return ortgo.NewEmptyScalar[int32]()
	case onnx.Bool:
		return ortgo.NewEmptyScalar[bool]()
	}
	return nil, nil
}

// fromValue copies an output value into a Go Tensor. Values the binding
// allocated hold Go-managed copies already, so their slices are taken as is.
func fromValue(v ortgo.Value) (*Tensor, error) {
	shape := []int64(v.GetShape().Clone())
	if shape == nil {
		shape = []int64{}
	}
	switch x := v.(type) {
	case *ortgo.Tensor[float32]:
		return &Tensor{Type: onnx.Float, Shape: shape, F32: x.GetData()}, nil
	case *ortgo.Tensor[float64]:
		return &Tensor{Type: onnx.Double, Shape: shape, F64: x.GetData()}, nil
	case *ortgo.Tensor[int64]:
		return &Tensor{Type: onnx.Int64, Shape: shape, I64: x.GetData()}, nil
	case *ortgo.Tensor[int32]:
		return &Tensor{Type: onnx.Int32, Shape: shape, I32: x.GetData()}, nil
	case *ortgo.Tensor[bool]:
		return &Tensor{Type: onnx.Bool, Shape: shape, Bool: x.GetData()}, nil
	case *ortgo.Scalar[float32]:
		return &Tensor{Type: onnx.Float, Shape: shape, F32: []float32{x.GetData()}}, nil
	case *ortgo.Scalar[float64]:
		return &Tensor{Type: onnx.Double, Shape: shape, F64: []float64{x.GetData()}}, nil
	case *ortgo.Scalar[int64]:
		return &Tensor{Type: onnx.Int64, Shape: shape, I64: []int64{x.GetData()}}, nil
	case *ortgo.Scalar[int32]:
		return &Tensor{Type: onnx.Int32, Shape: shape, I32: []int32{x.GetData()}}, nil
	case *ortgo.Scalar[bool]:
		return &Tensor{Type: onnx.Bool, Shape: shape, Bool: []bool{x.GetData()}}, nil
	}
	return nil, fmt.Errorf("%w: unsupported output value %T", ErrRun, v)
}
