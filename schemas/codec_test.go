package schemas

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func buildEmpty(mem memory.Allocator, s *arrow.Schema) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, s)
	defer b.Release()
	for _, f := range b.Fields() {
		f.AppendNull()
	}
	return b.NewRecordBatch()
}

func TestRoundTripEveryKind(t *testing.T) {
	rows := sampleLabeled(9)
	tests := []struct {
		kind  Kind
		build func(memory.Allocator) arrow.RecordBatch
		read  func(arrow.RecordBatch) (any, error)
		want  any
	}{
		{KindPrompt, func(m memory.Allocator) arrow.RecordBatch {
			ps := make([]Prompt, len(rows))
			for i := range rows {
				ps[i] = rows[i].Prompt
			}
			return NewPromptBatch(m, ps)
		}, func(r arrow.RecordBatch) (any, error) { return ReadPrompts(r) }, func() any {
			ps := make([]Prompt, len(rows))
			for i := range rows {
				ps[i] = rows[i].Prompt
			}
			return ps
		}()},
		{KindRollout, func(m memory.Allocator) arrow.RecordBatch {
			rs := make([]Rollout, len(rows))
			for i := range rows {
				rs[i] = rows[i].Rollout
			}
			return NewRolloutBatch(m, rs)
		}, func(r arrow.RecordBatch) (any, error) { return ReadRollouts(r) }, func() any {
			rs := make([]Rollout, len(rows))
			for i := range rows {
				rs[i] = rows[i].Rollout
			}
			return rs
		}()},
		{KindVerified, func(m memory.Allocator) arrow.RecordBatch {
			vs := make([]Verified, len(rows))
			for i := range rows {
				vs[i] = rows[i].Verified
			}
			return NewVerifiedBatch(m, vs)
		}, func(r arrow.RecordBatch) (any, error) { return ReadVerified(r) }, func() any {
			vs := make([]Verified, len(rows))
			for i := range rows {
				vs[i] = rows[i].Verified
			}
			return vs
		}()},
		{KindLabeled, func(m memory.Allocator) arrow.RecordBatch { return NewLabeledBatch(m, rows) },
			func(r arrow.RecordBatch) (any, error) { return ReadLabeled(r) }, rows},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			mem := checkedMem(t)
			rec := tc.build(mem)
			payload, err := Encode(rec)
			rec.Release()
			if err != nil {
				t.Fatal(err)
			}
			k, v, err := PeekKind(payload)
			if err != nil || k != tc.kind || v != Version {
				t.Fatalf("PeekKind = %q, %d, %v", k, v, err)
			}
			got, err := Decode(tc.kind, payload, mem)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Release()
			vals, err := tc.read(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalize(vals), normalize(tc.want)) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", vals, tc.want)
			}
			ids, err := RowIDs(got)
			if err != nil || len(ids) != len(rows) {
				t.Fatalf("RowIDs = %v, %v", ids, err)
			}
			if tc.kind != KindPrompt && ids[1] != rows[1].TrajectoryID {
				t.Fatalf("RowIDs[1] = %q, want %q", ids[1], rows[1].TrajectoryID)
			}
		})
	}
}

// normalize maps empty slices to nil so DeepEqual compares values only.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	out := reflect.MakeSlice(rv.Type(), rv.Len(), rv.Len())
	reflect.Copy(out, rv)
	for i := range out.Len() {
		normStruct(out.Index(i))
	}
	return out.Interface()
}

func normStruct(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			normStruct(f)
		case reflect.Slice:
			if f.Len() == 0 {
				f.Set(reflect.Zero(f.Type()))
			}
		}
	}
}

func TestDecodeRefusesBadPayloads(t *testing.T) {
	mem := checkedMem(t)
	good := func() []byte {
		rec := NewRolloutBatch(mem, []Rollout{sampleLabeled(1)[0].Rollout})
		defer rec.Release()
		b, err := Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	fs, _ := Fields(KindRollout)
	v2md := arrow.NewMetadata([]string{MetaKind, MetaVersion}, []string{"rollout", fmt.Sprint(Version + 1)})
	v1md := arrow.NewMetadata([]string{MetaKind, MetaVersion}, []string{"rollout", "1"})
	badmd := arrow.NewMetadata([]string{MetaKind, MetaVersion}, []string{"rollout", "x"})
	rmd := arrow.NewMetadata([]string{MetaKind, MetaVersion}, []string{"rollout", fmt.Sprint(Version)})
	noMeta := arrow.NewSchema(fs, nil)
	wrongCols := arrow.NewSchema(fs[:len(fs)-1], &rmd)
	renamed := append([]arrow.Field(nil), fs...)
	renamed[0].Name = "run"
	retyped := append([]arrow.Field(nil), fs...)
	retyped[1].Type = arrow.PrimitiveTypes.Int32

	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	tests := []struct {
		name    string
		payload []byte
		kind    Kind
		want    error
	}{
		{"empty", nil, KindRollout, ErrMalformed},
		{"random bytes", random, KindRollout, ErrMalformed},
		{"truncated", good[:len(good)/2], KindRollout, ErrMalformed},
		{"truncated in body", good[:len(good)-64], KindRollout, ErrMalformed},
		{"wrong kind", good, KindVerified, ErrWrongKind},
		{"unknown kind", good, Kind("nope"), ErrUnknownKind},
		{"newer version", encodeRaw(t, mem, arrow.NewSchema(fs, &v2md)), KindRollout, ErrUnknownVersion},
		{"version 1 (before group_size)", encodeRaw(t, mem, arrow.NewSchema(fs, &v1md)), KindRollout, ErrUnknownVersion},
		{"version not a number", encodeRaw(t, mem, arrow.NewSchema(fs, &badmd)), KindRollout, ErrUnknownVersion},
		{"no metadata", encodeRaw(t, mem, noMeta), KindRollout, ErrSchemaMismatch},
		{"missing column", encodeRaw(t, mem, wrongCols), KindRollout, ErrSchemaMismatch},
		{"renamed column", encodeRaw(t, mem, arrow.NewSchema(renamed, &rmd)), KindRollout, ErrSchemaMismatch},
		{"retyped column", encodeRaw(t, mem, arrow.NewSchema(retyped, &rmd)), KindRollout, ErrSchemaMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := Decode(tc.kind, tc.payload, mem)
			if rec != nil {
				rec.Release()
				t.Fatal("expected no record")
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want %v (and ErrInvalid)", err, tc.want)
			}
		})
	}
}

// encodeRaw writes a one-row batch of any schema with the IPC writer,
// bypassing Encode's metadata check.
func encodeRaw(t testing.TB, mem memory.Allocator, s *arrow.Schema) []byte {
	t.Helper()
	if s.Metadata().FindKey(MetaKind) >= 0 {
		return encodeWith(t, mem, s)
	}
	rec := buildEmpty(mem, s)
	defer rec.Release()
	return ipcBytes(t, rec)
}

func TestEncodeNeedsMetadata(t *testing.T) {
	mem := checkedMem(t)
	fs, _ := Fields(KindPrompt)
	rec := buildEmpty(mem, arrow.NewSchema(fs, nil))
	defer rec.Release()
	if _, err := Encode(rec); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeRefusesTwoBatches(t *testing.T) {
	mem := checkedMem(t)
	rec := NewPromptBatch(mem, []Prompt{{PromptID: "a"}})
	defer rec.Release()
	b := ipcBytes(t, rec, rec)
	if r, err := Decode(KindPrompt, b, mem); !errors.Is(err, ErrMalformed) {
		if r != nil {
			r.Release()
		}
		t.Fatalf("err = %v", err)
	}
}

func TestReadersRefuseShortSchemas(t *testing.T) {
	mem := checkedMem(t)
	rec := NewPromptBatch(mem, []Prompt{{PromptID: "a"}})
	defer rec.Release()
	if _, err := ReadLabeled(rec); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("err = %v", err)
	}
	// A labeled batch can be read as every earlier kind.
	lab := NewLabeledBatch(mem, sampleLabeled(2))
	defer lab.Release()
	ps, err := ReadPrompts(lab)
	if err != nil || len(ps) != 2 || ps[0].Prompt != "2+3=" {
		t.Fatalf("ReadPrompts(labeled) = %+v, %v", ps, err)
	}
}

func TestEncodeAppendReusesStorage(t *testing.T) {
	mem := checkedMem(t)
	rec := NewRolloutBatch(mem, []Rollout{sampleLabeled(1)[0].Rollout})
	defer rec.Release()
	want, err := Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, len(want)+1<<17) // room for the size hint
	for i := range cap(dst) {
		dst = append(dst, byte(i))
	}
	got, err := EncodeAppend(dst, rec)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("EncodeAppend wrote different bytes than Encode")
	}
	if &got[0] != &dst[0] {
		t.Fatal("EncodeAppend did not write into dst's storage")
	}
}
