package onnx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// The keys of TensorProto.external_data this package writes and reads
// (others, such as checksum, are skipped).
const (
	extLocation = "location"
	extOffset   = "offset"
	extLength   = "length"
)

// ExternalAlign is the alignment of every tensor's offset in an external
// data file: 64 KiB, the allocation granularity of every system ONNX
// Runtime memory-maps such files on (4 KiB pages on Linux, 64 KiB on
// Windows), so that it can map each tensor instead of reading it.
const ExternalAlign = 64 << 10

// DefaultExternalThreshold is the size from which SaveExternal and callers
// that take no threshold of their own move a tensor out of the protobuf:
// the weight matrices of a real model, not its norms, biases and shape
// constants.
const DefaultExternalThreshold = 1 << 20

// ExternalTensor is an initializer that MarshalExternal wrote as a
// reference to external data: the model's own tensor (its data not
// copied; Tensor.RawData gives the bytes) and where those bytes belong.
type ExternalTensor struct {
	Tensor *Tensor
	Place  ExternalData
}

// MarshalExternal encodes m like Marshal, except that each initializer of
// the main graph holding at least threshold bytes of data (Tensor.DataSize;
// a threshold below 1 means 1) is written as a reference to external data
// in the file location, at offsets aligned to ExternalAlign in initializer
// order. It returns the encoding, free of the weights and so far below
// protobuf's 2 GiB limit, and the initializers it moved out. Nothing is
// copied: the caller writes the returned tensors' data to location
// (SaveExternal does) or hands them to ONNX Runtime from memory
// (ort.Runtime.NewSessionExternal does), and must not change them in the
// meantime. Tensors that are already external stay as they are.
func (m *Model) MarshalExternal(location string, threshold int64) ([]byte, []ExternalTensor, error) {
	if m.Graph == nil {
		return nil, nil, ErrNoGraph
	}
	if location == "" {
		return nil, nil, fmt.Errorf("%w: empty external data location", ErrExternalData)
	}
	threshold = max(threshold, 1)
	ext := map[*Tensor]ExternalData{}
	var list []ExternalTensor
	off := int64(0)
	for _, t := range m.Graph.Initializers {
		if t == nil || t.DataSize() < threshold || len(t.RawData()) == 0 {
			continue
		}
		if _, dup := ext[t]; dup {
			continue
		}
		off = (off + ExternalAlign - 1) / ExternalAlign * ExternalAlign
		e := ExternalData{Location: location, Offset: off, Length: t.DataSize()}
		off += e.Length
		ext[t] = e
		list = append(list, ExternalTensor{Tensor: t, Place: e})
	}
	b, err := m.marshal(ext)
	if err != nil {
		return nil, nil, err
	}
	return b, list, nil
}

// SaveExternal writes m to the file path and the data of its initializers
// of at least threshold bytes (see MarshalExternal) to path+".data" beside
// it, the layout ONNX Runtime and the onnx tools load (a model of any size,
// where Marshal stops at 2 GiB). Load reads the pair back.
func (m *Model) SaveExternal(path string, threshold int64) error {
	location := filepath.Base(path) + ".data"
	b, ext, err := m.MarshalExternal(location, threshold)
	if err != nil {
		return err
	}
	if err := writeExternalFile(filepath.Join(filepath.Dir(path), location), ext); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// writeExternalFile writes each tensor's data at its offset of the file at
// path (the gaps between them stay holes).
func writeExternalFile(path string, ext []ExternalTensor) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	for _, e := range ext {
		if _, err := f.WriteAt(e.Tensor.RawData(), e.Place.Offset); err != nil {
			return err
		}
	}
	return nil
}

// Load reads a model file and, when its tensors have external data, the
// files they name, relative to the model's directory and confined to it
// (see LoadExternal).
func Load(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Unmarshal(b)
	if err != nil {
		return nil, err
	}
	if err := m.LoadExternal(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return m, nil
}

// LoadExternal reads the data of every external tensor of m (initializers
// and tensor attributes, subgraphs included) from the files their
// locations name under dir, decodes it as Unmarshal decodes raw_data, and
// makes the tensors ordinary ones. A location must stay inside dir: an
// absolute path, one with "..", or a symbolic link leading out is refused
// (ErrExternalData), as is a range beyond the end of its file; nothing is
// allocated before the file is known to hold the bytes.
func (m *Model) LoadExternal(dir string) error {
	if m.Graph == nil {
		return ErrNoGraph
	}
	var ts []*Tensor
	collectExternal(m.Graph, 0, &ts)
	if len(ts) == 0 {
		return nil
	}
	if dir == "" {
		return fmt.Errorf("%w: no directory to read external data from", ErrExternalData)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrExternalData, err)
	}
	defer func() { _ = root.Close() }()
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	for _, t := range ts {
		if err := t.check(); err != nil {
			return err
		}
		loc := t.External.Location
		f, ok := files[loc]
		if !ok {
			if !filepath.IsLocal(loc) {
				return fmt.Errorf("%w: tensor %q: location %q is not inside the model's directory", ErrExternalData, t.Name, loc)
			}
			if f, err = root.Open(loc); err != nil {
				return fmt.Errorf("%w: tensor %q: %w", ErrExternalData, t.Name, err)
			}
			files[loc] = f
		}
		if err := t.readExternal(f); err != nil {
			return err
		}
	}
	return nil
}

// collectExternal appends the external tensors of g and its subgraphs.
func collectExternal(g *Graph, depth int, ts *[]*Tensor) {
	if g == nil || depth > maxDepth {
		return
	}
	for _, t := range g.Initializers {
		if t != nil && t.External != nil {
			*ts = append(*ts, t)
		}
	}
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		for _, a := range n.Attrs {
			if a.T != nil && a.T.External != nil {
				*ts = append(*ts, a.T)
			}
			collectExternal(a.G, depth+1, ts)
		}
	}
}

// readExternal reads t's external bytes from f straight into the typed
// slice of its type (no intermediate copy on a little-endian machine) and
// clears t.External.
func (t *Tensor) readExternal(f *os.File) error {
	e := t.External
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: tensor %q: %w", ErrExternalData, t.Name, err)
	}
	if e.Offset > st.Size() || e.Length > st.Size()-e.Offset {
		return fmt.Errorf("%w: tensor %q: bytes %d..%d of %q, which has %d", ErrExternalData, t.Name,
			e.Offset, e.Offset+e.Length, e.Location, st.Size())
	}
	n := int(e.Length)
	var dst []byte
	switch sz := t.DataType.ElemSize(); {
	case !littleEndian || n == 0:
	case t.DataType == Float:
		t.Float = make([]float32, n/sz)
		dst = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.Float))), n)
	case t.DataType == Double:
		t.Double = make([]float64, n/sz)
		dst = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.Double))), n)
	case t.DataType == Int64:
		t.Int64 = make([]int64, n/sz)
		dst = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.Int64))), n)
	case t.DataType == Int32:
		t.Int32 = make([]int32, n/sz)
		dst = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.Int32))), n)
	}
	typed := dst != nil
	if !typed {
		dst = make([]byte, n)
	}
	if _, err := f.ReadAt(dst, e.Offset); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return fmt.Errorf("%w: tensor %q: %w", ErrExternalData, t.Name, err)
	}
	t.External = nil
	if typed || n == 0 {
		return nil
	}
	return t.setRaw(dst)
}

// decodeExternalEntry reads one StringStringEntryProto of
// TensorProto.external_data into e.
func decodeExternalEntry(b []byte, e *ExternalData) error {
	var key, value string
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case fEntryKey, fEntryValue:
			s, n, err := bytesField(typ, b)
			if num == fEntryKey {
				key = string(s)
			} else {
				value = string(s)
			}
			return n, err
		}
		return skipField(num, typ, b)
	})
	if err != nil {
		return err
	}
	switch key {
	case extLocation:
		e.Location = value
	case extOffset, extLength:
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("%w: external data %s %q", ErrInvalidTensor, key, value)
		}
		if key == extOffset {
			e.Offset = v
		} else {
			e.Length = v
		}
	}
	return nil
}
