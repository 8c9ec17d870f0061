package hf_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/model/hf"
	"github.com/wsgrpo/wsgrpo/model/hf/hftest"
)

// TestBundleRoundTrip: a bundle survives MarshalBundle/UnmarshalBundle and
// Save/LoadBundle unchanged (config, weights, files, EOS ids).
func TestBundleRoundTrip(t *testing.T) {
	b := hftest.Bundle(t, 1, true)
	blob, err := hf.MarshalBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if !hf.IsBundle(blob) || hf.IsBundle([]byte(checkpoint.BlobMagic)) {
		t.Fatal("IsBundle does not tell a bundle from a checkpoint blob")
	}
	dir := t.TempDir()
	if err := b.Save(dir, hf.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	fromDir, err := hf.LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	fromBlob, err := hf.UnmarshalBundle(blob)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]*hf.Bundle{"blob": fromBlob, "dir": fromDir} {
		t.Run(name, func(t *testing.T) {
			if !bytes.Equal(got.Checkpoint.RawConfig, b.Checkpoint.RawConfig) {
				t.Fatal("config.json differs")
			}
			for _, n := range b.Checkpoint.Weights.Names() {
				if !slices.Equal(got.Checkpoint.Weights[n].Data, b.Checkpoint.Weights[n].Data) {
					t.Fatalf("tensor %s differs", n)
				}
			}
			if len(got.Files) != len(b.Files) {
				t.Fatalf("%d files, want %d", len(got.Files), len(b.Files))
			}
			for n, data := range b.Files {
				if !bytes.Equal(got.Files[n], data) {
					t.Fatalf("file %s differs", n)
				}
			}
			eos, err := got.EOSIDs()
			if err != nil || !slices.Equal(eos, []int{hftest.EOS, hftest.PAD}) {
				t.Fatalf("EOSIDs = %v, %v", eos, err)
			}
		})
	}
	again, err := hf.MarshalBundle(fromBlob)
	if err != nil || !bytes.Equal(again, blob) {
		t.Fatalf("re-marshalled blob differs (%v)", err)
	}
}

// TestUnmarshalBundleErrors: truncated or altered blobs are ErrBundle (or
// the config's error), never a panic.
func TestUnmarshalBundleErrors(t *testing.T) {
	blob := hftest.Blob(t, 1, false)
	badVersion := slices.Clone(blob)
	badVersion[len(hf.BundleMagic)] = 9
	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"empty", nil},
		{"a checkpoint blob", []byte(checkpoint.BlobMagic + "\x01\x00\x00\x00")},
		{"magic only", []byte(hf.BundleMagic)},
		{"version", badVersion},
		{"truncated weights", blob[:len(blob)-4]},
		{"extra bytes", append(slices.Clone(blob), 0, 0, 0, 0)},
		{"truncated files", blob[:len(hf.BundleMagic)+40]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hf.UnmarshalBundle(tc.blob)
			if !errors.Is(err, hf.ErrBundle) && !errors.Is(err, hf.ErrConfig) {
				t.Fatalf("err = %v, want ErrBundle", err)
			}
		})
	}
}
