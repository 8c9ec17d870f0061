package onnx

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnmarshal checks that arbitrary bytes never panic the decoder or the
// loading of external data, and that whatever decodes and re-encodes is a
// fixed point of Marshal∘Unmarshal.
func FuzzUnmarshal(f *testing.F) {
	enc, err := richModel().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(enc[:len(enc)/3])
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0x02, 0x12, 0x00})
	ext, _, err := richModel().MarshalExternal("w.bin", 8)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ext)
	esc, err := externalModel("../w.bin", 0, 4).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(esc)
	// External data, when a model has some, is read from dir/w.bin (and
	// nowhere else: LoadExternal confines locations to dir).
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), bytes.Repeat([]byte{0x3f, 0x80, 0, 0}, 64<<10), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadSignature(b)
		m, err := Unmarshal(b)
		if err != nil {
			return
		}
		_ = m.Validate()
		_ = m.LoadExternal(dir)
		b2, err := m.Marshal()
		if err != nil {
			return // decodable is not always encodable (e.g. undefined attribute types)
		}
		m2, err := Unmarshal(b2)
		if err != nil {
			t.Fatalf("re-encoded model does not decode: %v", err)
		}
		b3, err := m2.Marshal()
		if err != nil {
			t.Fatalf("re-decoded model does not encode: %v", err)
		}
		if !bytes.Equal(b2, b3) {
			t.Fatalf("Marshal∘Unmarshal is not idempotent: %d vs %d bytes", len(b2), len(b3))
		}
	})
}
