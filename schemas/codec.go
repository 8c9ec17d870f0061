package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Errors returned by Decode and the row readers. Every one of them also
// matches ErrInvalid, so a runner can tell "refuse this payload" from a
// transient failure with a single errors.Is.
var (
	ErrInvalid        = errors.New("invalid payload")
	ErrMalformed      = fmt.Errorf("%w: malformed Arrow IPC", ErrInvalid)
	ErrUnknownVersion = fmt.Errorf("%w: unknown schema version", ErrInvalid)
	ErrSchemaMismatch = fmt.Errorf("%w: schema mismatch", ErrInvalid)
	ErrWrongKind      = fmt.Errorf("%w: wrong schema kind", ErrInvalid)
	ErrUnknownKind    = fmt.Errorf("%w: unknown schema kind", ErrInvalid)
)

// Encode writes rec as an Arrow IPC stream holding exactly one record batch.
// rec's schema must carry the kind and version metadata (use Schema or the
// New*Batch constructors).
func Encode(rec arrow.RecordBatch) ([]byte, error) {
	return EncodeAppend(nil, rec)
}

// EncodeAppend is Encode writing into dst's storage (from dst[:0]) when it
// is large enough, so that a caller can recycle message buffers.
func EncodeAppend(dst []byte, rec arrow.RecordBatch) ([]byte, error) {
	md := rec.Schema().Metadata()
	if md.FindKey(MetaKind) < 0 || md.FindKey(MetaVersion) < 0 {
		return nil, fmt.Errorf("schemas: encode: %w: record schema has no %s/%s metadata", ErrSchemaMismatch, MetaKind, MetaVersion)
	}
	buf := bytes.NewBuffer(dst[:0])
	// Growing the buffer while writing cost more than the write itself; the
	// body is the arrays' buffers plus padding, the rest is metadata.
	buf.Grow(encodedSizeHint(rec))
	w := ipc.NewWriter(buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("schemas: encode: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("schemas: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// encodedSizeHint estimates the IPC stream size of rec: every buffer of
// every array (each padded to 8 bytes) plus room for the schema and
// record-batch metadata.
func encodedSizeHint(rec arrow.RecordBatch) int {
	n := 8 << 10
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += b.Len() + 8
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, c := range rec.Columns() {
		add(c.Data())
	}
	return n
}

// PeekKind reads only the schema of payload and returns its kind and version.
func PeekKind(payload []byte) (k Kind, version int, err error) {
	defer recoverInto(&err)
	if err := verifyStream(payload); err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	limit := int64(len(payload))
	r, err := ipc.NewReader(bytes.NewReader(payload), ipc.WithMetadataSizeLimit(limit), ipc.WithBodySizeLimit(limit))
	if err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	defer r.Release()
	return kindVersion(r.Schema())
}

func kindVersion(s *arrow.Schema) (Kind, int, error) {
	md := s.Metadata()
	ki, vi := md.FindKey(MetaKind), md.FindKey(MetaVersion)
	if ki < 0 || vi < 0 {
		return "", 0, fmt.Errorf("%w: schema metadata lacks %s or %s", ErrSchemaMismatch, MetaKind, MetaVersion)
	}
	v, err := strconv.Atoi(md.Values()[vi])
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s=%q is not a number", ErrUnknownVersion, MetaVersion, md.Values()[vi])
	}
	return Kind(md.Values()[ki]), v, nil
}

// Decode parses payload as one record batch of kind k at the current Version
// and checks its columns against the schema. The caller owns (and must
// Release) the returned record. Every failure matches ErrInvalid.
func Decode(k Kind, payload []byte, mem memory.Allocator) (rec arrow.RecordBatch, err error) {
	want, err := Schema(k)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			if rec != nil {
				rec.Release()
				rec = nil
			}
			err = fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	if err := verifyStream(payload); err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	bounded := &boundedAllocator{Allocator: mem, limit: decodeBudget(len(payload))}
	limit := int64(len(payload))
	r, err := ipc.NewReader(bytes.NewReader(payload), ipc.WithAllocator(bounded),
		ipc.WithMetadataSizeLimit(limit), ipc.WithBodySizeLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	defer r.Release()
	gotKind, gotVersion, err := kindVersion(r.Schema())
	if err != nil {
		return nil, err
	}
	if gotKind != k {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrWrongKind, gotKind, k)
	}
	if gotVersion != Version {
		return nil, fmt.Errorf("%w: %s batch has version %d, this build reads version %d (upgrade or downgrade the stage that wrote it)", ErrUnknownVersion, k, gotVersion, Version)
	}
	if err := sameFields(want, r.Schema()); err != nil {
		return nil, err
	}
	if !r.Next() {
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, r.Err())
		}
		return nil, fmt.Errorf("%w: stream holds no record batch", ErrMalformed)
	}
	rec = r.RecordBatch()
	rec.Retain()
	if r.Next() {
		rec.Release()
		return nil, fmt.Errorf("%w: stream holds more than one record batch", ErrMalformed)
	}
	if r.Err() != nil {
		rec.Release()
		return nil, fmt.Errorf("%w: %v", ErrMalformed, r.Err())
	}
	if err := validateColumns(rec); err != nil {
		rec.Release()
		return nil, err
	}
	return rec, nil
}

func sameFields(want, got *arrow.Schema) error {
	if want.NumFields() != got.NumFields() {
		return fmt.Errorf("%w: %d columns, want %d", ErrSchemaMismatch, got.NumFields(), want.NumFields())
	}
	for i := range want.NumFields() {
		w, g := want.Field(i), got.Field(i)
		if w.Name != g.Name || !arrow.TypeEqual(w.Type, g.Type) {
			return fmt.Errorf("%w: column %d is %s %s, want %s %s", ErrSchemaMismatch, i, g.Name, g.Type, w.Name, w.Type)
		}
	}
	return nil
}

type fullValidator interface{ ValidateFull() error }

// validateColumns checks offsets and buffer sizes so that later reads cannot
// go out of bounds on a crafted payload.
func validateColumns(rec arrow.RecordBatch) error {
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rec.NumRows() {
			return fmt.Errorf("%w: column %s has %d rows, batch has %d", ErrMalformed, rec.ColumnName(i), col.Len(), rec.NumRows())
		}
		if v, ok := col.(fullValidator); ok {
			if err := v.ValidateFull(); err != nil {
				return fmt.Errorf("%w: column %s: %v", ErrMalformed, rec.ColumnName(i), err)
			}
		}
		if err := checkBuffers(col.Data()); err != nil {
			return fmt.Errorf("%w: column %s: %v", ErrMalformed, rec.ColumnName(i), err)
		}
	}
	return nil
}

// checkBuffers verifies that fixed-width value buffers and validity bitmaps
// are long enough for the array's length and offset, recursively.
func checkBuffers(d arrow.ArrayData) error {
	n := d.Offset() + d.Len()
	bufs := d.Buffers()
	if len(bufs) > 0 && bufs[0] != nil && bufs[0].Len()*8 < n {
		return fmt.Errorf("validity bitmap too short")
	}
	if fw, ok := d.DataType().(arrow.FixedWidthDataType); ok && len(bufs) > 1 {
		need := n * fw.BitWidth()
		if fw.BitWidth() == 1 {
			need = n
		}
		if need > 0 && (bufs[1] == nil || bufs[1].Len()*8 < need) {
			return fmt.Errorf("value buffer too short")
		}
	}
	if _, ok := d.DataType().(*arrow.ListType); ok {
		if len(bufs) < 2 || bufs[1] == nil || bufs[1].Len() < (n+1)*4 {
			if n > 0 {
				return fmt.Errorf("offset buffer too short")
			}
		}
	}
	for _, c := range d.Children() {
		if err := checkBuffers(c); err != nil {
			return err
		}
	}
	return nil
}

// RowIDs returns the stable id of every row of rec (prompt_id for prompt
// batches, trajectory_id for the others).
func RowIDs(rec arrow.RecordBatch) ([]string, error) {
	k, _, err := kindVersion(rec.Schema())
	if err != nil {
		return nil, err
	}
	idx := rec.Schema().FieldIndices(IDColumn(k))
	if len(idx) != 1 {
		return nil, fmt.Errorf("%w: no %s column", ErrSchemaMismatch, IDColumn(k))
	}
	col, ok := rec.Column(idx[0]).(*array.String)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a string column", ErrSchemaMismatch, IDColumn(k))
	}
	out := make([]string, col.Len())
	for i := range out {
		// Value aliases the batch's buffer; the ids must outlive it.
		out[i] = strings.Clone(col.Value(i))
	}
	return out, nil
}

func recoverInto(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrMalformed, r)
	}
}
