package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file checks the framing and flatbuffer metadata of an Arrow IPC
// stream before arrow-go's reader sees it. arrow-go trusts flatbuffer vector
// lengths (a crafted schema can ask for a slice of billions of fields), so
// Decode first walks every message with bounds checks of its own and refuses
// features that wsgrpo payloads never use (dictionaries, compression, types
// other than the ones in this package's schemas).

// errVerify is wrapped by every verification failure.
var errVerify = errors.New("ipc verification failed")

// maxFieldDepth bounds the nesting of schema fields (ours nest two deep).
const maxFieldDepth = 8

// Arrow flatbuffer enum values used below (format/Message.fbs, Schema.fbs).
const (
	headerSchema      = 1
	headerRecordBatch = 3

	typeInt           = 2
	typeFloatingPoint = 3
	typeUtf8          = 5
	typeBool          = 6
	typeList          = 12
)

type fbuf []byte

func (b fbuf) u32(pos int) (uint32, error) {
	if pos < 0 || pos+4 > len(b) {
		return 0, fmt.Errorf("%w: offset %d out of bounds", errVerify, pos)
	}
	return binary.LittleEndian.Uint32(b[pos:]), nil
}

func (b fbuf) u16(pos int) (uint16, error) {
	if pos < 0 || pos+2 > len(b) {
		return 0, fmt.Errorf("%w: offset %d out of bounds", errVerify, pos)
	}
	return binary.LittleEndian.Uint16(b[pos:]), nil
}

// table is a verified flatbuffer table: its vtable lies inside the buffer.
type table struct {
	b     fbuf
	pos   int
	vt    int
	vtLen int
}

func (b fbuf) table(pos int) (table, error) {
	so, err := b.u32(pos)
	if err != nil {
		return table{}, err
	}
	vt := pos - int(int32(so))
	vtLen, err := b.u16(vt)
	if err != nil {
		return table{}, err
	}
	if vtLen < 4 || vtLen%2 != 0 || vt+int(vtLen) > len(b) {
		return table{}, fmt.Errorf("%w: bad vtable", errVerify)
	}
	objLen, err := b.u16(vt + 2)
	if err != nil {
		return table{}, err
	}
	if pos+int(objLen) > len(b) {
		return table{}, fmt.Errorf("%w: table overruns buffer", errVerify)
	}
	return table{b: b, pos: pos, vt: vt, vtLen: int(vtLen)}, nil
}

// field returns the absolute position of field slot (4, 6, 8, ...) or 0
// when the field is absent.
func (t table) field(slot int) (int, error) {
	if slot >= t.vtLen {
		return 0, nil
	}
	off, err := t.b.u16(t.vt + slot)
	if err != nil || off == 0 {
		return 0, err
	}
	return t.pos + int(off), nil
}

func (t table) u8(slot int) (int, error) {
	p, err := t.field(slot)
	if err != nil || p == 0 {
		return 0, err
	}
	if p >= len(t.b) {
		return 0, fmt.Errorf("%w: scalar out of bounds", errVerify)
	}
	return int(t.b[p]), nil
}

func (t table) i64(slot int) (int64, error) {
	p, err := t.field(slot)
	if err != nil || p == 0 {
		return 0, err
	}
	if p+8 > len(t.b) {
		return 0, fmt.Errorf("%w: scalar out of bounds", errVerify)
	}
	return int64(binary.LittleEndian.Uint64(t.b[p:])), nil
}

// ref follows the uoffset stored in field slot; 0 when absent.
func (t table) ref(slot int) (int, error) {
	p, err := t.field(slot)
	if err != nil || p == 0 {
		return 0, err
	}
	off, err := t.b.u32(p)
	if err != nil {
		return 0, err
	}
	return p + int(off), nil
}

func (t table) sub(slot int) (table, bool, error) {
	p, err := t.ref(slot)
	if err != nil || p == 0 {
		return table{}, false, err
	}
	s, err := t.b.table(p)
	return s, err == nil, err
}

// vector checks a vector of n elements of elem bytes and returns the position
// of its first element and n.
func (t table) vector(slot, elem int) (start, n int, err error) {
	p, err := t.ref(slot)
	if err != nil || p == 0 {
		return 0, 0, err
	}
	l, err := t.b.u32(p)
	if err != nil {
		return 0, 0, err
	}
	if int64(l)*int64(elem) > int64(len(t.b)-p-4) {
		return 0, 0, fmt.Errorf("%w: vector of %d elements overruns buffer", errVerify, l)
	}
	return p + 4, int(l), nil
}

// tables checks a vector of tables and calls each for every element.
func (t table) tables(slot int, each func(table) error) error {
	start, n, err := t.vector(slot, 4)
	if err != nil {
		return err
	}
	for i := range n {
		p := start + 4*i
		off, err := t.b.u32(p)
		if err != nil {
			return err
		}
		s, err := t.b.table(p + int(off))
		if err != nil {
			return err
		}
		if err := each(s); err != nil {
			return err
		}
	}
	return nil
}

func verifyKeyValue(kv table) error {
	if _, _, err := kv.vector(4, 1); err != nil {
		return err
	}
	_, _, err := kv.vector(6, 1)
	return err
}

func verifyField(f table, depth int) error {
	if depth > maxFieldDepth {
		return fmt.Errorf("%w: fields nested deeper than %d", errVerify, maxFieldDepth)
	}
	if _, _, err := f.vector(4, 1); err != nil { // name
		return err
	}
	tt, err := f.u8(8)
	if err != nil {
		return err
	}
	switch tt {
	case typeInt, typeFloatingPoint, typeUtf8, typeBool, typeList:
	default:
		return fmt.Errorf("%w: column type %d is not used by wsgrpo schemas", ErrSchemaMismatch, tt)
	}
	if _, _, err := f.sub(10); err != nil { // type table
		return err
	}
	if p, err := f.field(12); err != nil || p != 0 {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: dictionary-encoded columns are not used by wsgrpo schemas", ErrSchemaMismatch)
	}
	if err := f.tables(14, func(c table) error { return verifyField(c, depth+1) }); err != nil {
		return err
	}
	return f.tables(16, verifyKeyValue)
}

func verifySchema(s table) error {
	if err := s.tables(6, func(f table) error { return verifyField(f, 0) }); err != nil {
		return err
	}
	if err := s.tables(8, verifyKeyValue); err != nil {
		return err
	}
	_, _, err := s.vector(10, 8)
	return err
}

func verifyRecordBatch(rb table) error {
	if _, _, err := rb.vector(6, 16); err != nil { // nodes
		return err
	}
	if _, _, err := rb.vector(8, 16); err != nil { // buffers
		return err
	}
	if p, err := rb.field(10); err != nil || p != 0 {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: compressed batches are not used by wsgrpo", ErrSchemaMismatch)
	}
	_, _, err := rb.vector(12, 8)
	return err
}

// verifyStream walks every message of an IPC stream and checks its framing,
// metadata and body length against the payload.
func verifyStream(payload []byte) error {
	b := fbuf(payload)
	pos := 0
	for msg := 0; ; msg++ {
		if pos == len(b) {
			return nil // stream without an end-of-stream marker
		}
		word, err := b.u32(pos)
		if err != nil {
			return err
		}
		pos += 4
		metaLen := int(word)
		if word == 0xFFFFFFFF {
			w, err := b.u32(pos)
			if err != nil {
				return err
			}
			pos += 4
			metaLen = int(w)
		}
		if metaLen == 0 {
			return nil
		}
		if metaLen < 4 || metaLen > len(b)-pos {
			return fmt.Errorf("%w: message %d metadata length %d overruns payload", errVerify, msg, metaLen)
		}
		meta := b[pos : pos+metaLen]
		pos += metaLen
		root, err := meta.u32(0)
		if err != nil {
			return err
		}
		m, err := meta.table(int(root))
		if err != nil {
			return err
		}
		ht, err := m.u8(6)
		if err != nil {
			return err
		}
		header, ok, err := m.sub(8)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: message %d has no header", errVerify, msg)
		}
		switch {
		case ht == headerSchema && msg == 0:
			err = verifySchema(header)
		case ht == headerRecordBatch && msg > 0:
			err = verifyRecordBatch(header)
		default:
			err = fmt.Errorf("%w: message %d has unexpected type %d", errVerify, msg, ht)
		}
		if err != nil {
			return err
		}
		if err := m.tables(12, verifyKeyValue); err != nil {
			return err
		}
		bodyLen, err := m.i64(10)
		if err != nil {
			return err
		}
		if bodyLen < 0 || bodyLen > int64(len(b)-pos) {
			return fmt.Errorf("%w: message %d body length %d overruns payload", errVerify, msg, bodyLen)
		}
		pos += int(bodyLen)
	}
}
