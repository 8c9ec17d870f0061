package onnx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSaveExternalRoundTrip checks that a model saved with its tensors as
// external data loads back to the model itself, for thresholds that move
// all, some or none of the initializers out.
func TestSaveExternalRoundTrip(t *testing.T) {
	want, err := richModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		threshold int64
		external  int
	}{
		{"all", 0, 5}, // w, d, i64, i32, mask: uint8 in int32_data and the empty tensor stay
		{"8 bytes and up", 8, 4},
		{"24 bytes and up", 24, 2},
		{"none", 1 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := richModel()
			b, ext, err := m.MarshalExternal("rich.onnx.data", tc.threshold)
			if err != nil {
				t.Fatalf("MarshalExternal: %v", err)
			}
			if len(ext) != tc.external {
				t.Fatalf("%d external tensors, want %d", len(ext), tc.external)
			}
			for _, e := range ext {
				if e.Place.Offset%ExternalAlign != 0 || e.Place.Length != e.Tensor.DataSize() {
					t.Fatalf("tensor %q placed at %+v (%d bytes)", e.Tensor.Name, e.Place, e.Tensor.DataSize())
				}
			}
			stubs, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if err := stubs.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			n := 0
			for _, init := range stubs.Graph.Initializers {
				if init.External != nil {
					n++
				}
			}
			if n != tc.external {
				t.Fatalf("decoded %d external tensors, want %d", n, tc.external)
			}
			again, err := stubs.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("external stubs do not re-encode to the same bytes (err %v)", err)
			}

			path := filepath.Join(t.TempDir(), "rich.onnx")
			if err := m.SaveExternal(path, tc.threshold); err != nil {
				t.Fatalf("SaveExternal: %v", err)
			}
			loaded, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got, err := loaded.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("loaded model encodes to %d bytes that differ from the original's %d", len(got), len(want))
			}
		})
	}
}

// externalModel returns a model with one float initializer of n elements
// whose data is external at loc.
func externalModel(loc string, offset, n int64) *Model {
	b := NewBuilder("ext")
	x := b.Input("x", Float, Dim{Value: n})
	w := b.Initializer(&Tensor{Name: "w", DataType: Float, Dims: []int64{n},
		External: &ExternalData{Location: loc, Offset: offset, Length: 4 * n}})
	b.Named("Add", []string{x, w}, []string{"y"})
	b.Output("y", Float, Dim{Value: n})
	return NewModel(b.Graph(), 17)
}

// TestLoadExternalErrors checks that LoadExternal reads only inside the
// model's directory and only bytes its files hold.
func TestLoadExternalErrors(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	data := make([]byte, 64)
	for i := range data {
		data[i] = byte(i)
	}
	for _, p := range []string{filepath.Join(dir, "w.bin"), filepath.Join(outside, "secret.bin")} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.bin"), filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		loc    string
		offset int64
		n      int64
		dir    string
		want   error
	}{
		{"ok", "w.bin", 16, 4, dir, nil},
		{"ok in subdir path", "sub/../w.bin", 0, 16, dir, nil},
		{"parent", "../" + filepath.Base(outside) + "/secret.bin", 0, 4, dir, ErrExternalData},
		{"absolute", filepath.Join(outside, "secret.bin"), 0, 4, dir, ErrExternalData},
		{"escaping symlink", "link.bin", 0, 4, dir, ErrExternalData},
		{"missing file", "nope.bin", 0, 4, dir, ErrExternalData},
		{"past the end", "w.bin", 60, 4, dir, ErrExternalData},
		{"huge length", "w.bin", 0, 1 << 38, dir, ErrExternalData},
		{"no directory", "w.bin", 0, 4, "", ErrExternalData},
		{"empty location", "", 0, 4, dir, ErrInvalidTensor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := externalModel(tc.loc, tc.offset, tc.n)
			err := m.LoadExternal(tc.dir)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("LoadExternal = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			w := m.Graph.Initializers[0]
			if w.External != nil || len(w.Float) != int(tc.n) || !bytes.Equal(w.RawData(), data[tc.offset:tc.offset+4*tc.n]) {
				t.Fatalf("loaded tensor %+v", w)
			}
		})
	}
}

// TestExternalDecode checks the decoding of external_data entries: an
// omitted length is the tensor's size, and malformed values fail.
func TestExternalDecode(t *testing.T) {
	enc := func(tb testing.TB, m *Model) []byte {
		tb.Helper()
		b, err := m.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	b := enc(t, externalModel("w.bin", 4096, 8))
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *m.Graph.Initializers[0].External, (ExternalData{Location: "w.bin", Offset: 4096, Length: 32}); got != want {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		name, from, to string
		want           error
	}{
		{"no length", "length", "lengtx", nil},
		{"bad offset", "4096", "40x6", ErrInvalidTensor},
		{"negative length", "\x0232", "\x02-1", ErrInvalidTensor},
		{"wrong length", "\x0232", "\x0233", ErrInvalidTensor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1)
			if bytes.Equal(bad, b) {
				t.Fatalf("%q not in the encoding", tc.from)
			}
			m, err := Unmarshal(bad)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Unmarshal = %v, want %v", err, tc.want)
			}
			if err == nil && m.Graph.Initializers[0].External.Length != 32 {
				t.Fatalf("length %d, want 32", m.Graph.Initializers[0].External.Length)
			}
		})
	}
}

// TestMarshalTooLarge checks that an encoding past the protobuf limit is
// refused with ErrTooLarge, and that MarshalExternal encodes the model.
func TestMarshalTooLarge(t *testing.T) {
	saved := maxProtoBytes
	maxProtoBytes = 4096
	t.Cleanup(func() { maxProtoBytes = saved })
	b := NewBuilder("big")
	x := b.Input("x", Float, Dim{Value: 2048})
	w := b.Initializer(&Tensor{Name: "w", DataType: Float, Dims: []int64{2048}, Float: make([]float32, 2048)})
	b.Named("Add", []string{x, w}, []string{"y"})
	b.Output("y", Float, Dim{Value: 2048})
	m := NewModel(b.Graph(), 17)
	if _, err := m.Marshal(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Marshal = %v, want ErrTooLarge", err)
	}
	if _, ext, err := m.MarshalExternal("w.bin", DefaultExternalThreshold); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MarshalExternal above the tensor's size = %v (%d external), want ErrTooLarge", err, len(ext))
	}
	if _, ext, err := m.MarshalExternal("w.bin", 1024); err != nil || len(ext) != 1 {
		t.Fatalf("MarshalExternal = %v with %d external tensors, want 1", err, len(ext))
	}
	if _, _, err := m.MarshalExternal("", 1024); !errors.Is(err, ErrExternalData) {
		t.Fatalf("MarshalExternal without a location = %v, want ErrExternalData", err)
	}
}

// TestRawData checks the raw_data layout RawData gives (and DataSize
// counts) for every kind of tensor data.
func TestRawData(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    *Tensor
		want []byte
	}{
		{"float", &Tensor{DataType: Float, Dims: []int64{2}, Float: []float32{1, -2}},
			[]byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}},
		{"double", &Tensor{DataType: Double, Double: []float64{1}}, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"int64", &Tensor{DataType: Int64, Int64: []int64{-2}}, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"int32", &Tensor{DataType: Int32, Int32: []int32{258}}, []byte{2, 1, 0, 0}},
		{"raw bool", &Tensor{DataType: Bool, Dims: []int64{2}, Raw: []byte{1, 0}}, []byte{1, 0}},
		{"uint8 in int32_data", &Tensor{DataType: Uint8, Int32: []int32{255}}, nil},
		{"external", &Tensor{DataType: Float, External: &ExternalData{Location: "w", Length: 4}}, nil},
		{"empty", &Tensor{DataType: Float, Dims: []int64{0}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.t.RawData(); !bytes.Equal(got, tc.want) {
				t.Fatalf("RawData = %x, want %x", got, tc.want)
			}
			if got := tc.t.DataSize(); got != int64(len(tc.want)) {
				t.Fatalf("DataSize = %d, want %d", got, len(tc.want))
			}
		})
	}
}
