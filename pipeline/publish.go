package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// Headers the pipeline sets on every batch it publishes.
const (
	// HeaderKind carries the schema kind of the payload.
	HeaderKind = "Wsgrpo-Kind"
	// HeaderRows carries the number of rows in the payload.
	HeaderRows = "Wsgrpo-Rows"
	// HeaderSource names the input message an output was made from
	// (stream:sequence), for tracing.
	HeaderSource = "Wsgrpo-Source"
)

// Part is one encoded message of a batch: a batch that does not fit in one
// message is split by rows into several parts.
type Part struct {
	ID   string // Nats-Msg-Id used for de-duplication
	Rows int64
	Data []byte
}

// EncodeParts encodes rec as one Arrow IPC message, or, when that exceeds
// maxBody bytes, as several messages each holding a contiguous row range.
// Part ids are id, or id/p0, id/p1, ... for a split batch; the split is
// deterministic, so a re-publication produces the same ids. It returns
// ErrBatchTooLarge when a single row does not fit.
func EncodeParts(rec arrow.RecordBatch, maxBody int, id string) ([]Part, error) {
	data, err := schemas.EncodeAppend(getMsgBuf(), rec)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if maxBody <= 0 || len(data) <= maxBody {
		return []Part{{ID: id, Rows: rec.NumRows(), Data: data}}, nil
	}
	putMsgBuf(data)
	var parts []Part
	if err := splitEncode(rec, maxBody, &parts); err != nil {
		return nil, err
	}
	for i := range parts {
		parts[i].ID = id + "/p" + strconv.Itoa(i)
	}
	return parts, nil
}

func splitEncode(rec arrow.RecordBatch, maxBody int, parts *[]Part) error {
	data, err := schemas.EncodeAppend(getMsgBuf(), rec)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if len(data) <= maxBody {
		*parts = append(*parts, Part{Rows: rec.NumRows(), Data: data})
		return nil
	}
	putMsgBuf(data)
	n := rec.NumRows()
	if n <= 1 {
		return fmt.Errorf("%w: one row encodes to %d bytes, limit %d", ErrBatchTooLarge, len(data), maxBody)
	}
	for _, r := range [][2]int64{{0, n / 2}, {n / 2, n}} {
		s := rec.NewSlice(r[0], r[1])
		err := splitEncode(s, maxBody, parts)
		s.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// partMsg builds the NATS message of one part.
func partMsg(subject string, kind schemas.Kind, p Part, source string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = p.Data
	m.Header.Set(jetstream.MsgIDHeader, p.ID)
	m.Header.Set(HeaderKind, string(kind))
	m.Header.Set(HeaderRows, strconv.FormatInt(p.Rows, 10))
	if source != "" {
		m.Header.Set(HeaderSource, source)
	}
	return m
}

// Msg builds the NATS message that carries p on subject: its body, its
// de-duplication id and the HeaderKind and HeaderRows headers, as the
// runner and PublishBatch publish parts. It is for callers that publish
// with options of their own.
func (p Part) Msg(subject string, kind schemas.Kind) *nats.Msg {
	return partMsg(subject, kind, p, "")
}

// PublishParts publishes parts (from EncodeParts, of one batch or several)
// to subject as kind, all asynchronously, and waits until the stream has
// stored every one. It returns the number of parts the stream reported as
// duplicates (already stored under the same id). The parts' bodies stay
// the caller's.
func PublishParts(ctx context.Context, js jetstream.JetStream, subject string, kind schemas.Kind, parts []Part) (dups int, err error) {
	msgs := make([]*nats.Msg, len(parts))
	for i, p := range parts {
		msgs[i] = partMsg(subject, kind, p, "")
	}
	return publishParts(ctx, js, msgs)
}

// publishParts publishes every part asynchronously and waits for all
// PubAcks. It returns the number of parts the stream reported as
// duplicates.
func publishParts(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) (dups int, err error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return dups, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		futures = append(futures, f)
	}
	var errs []error
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
		case e := <-f.Err():
			errs = append(errs, e)
		case <-ctx.Done():
			return dups, fmt.Errorf("publish: waiting for PubAck: %w", ctx.Err())
		}
	}
	if len(errs) > 0 {
		return dups, fmt.Errorf("publish: %w", errors.Join(errs...))
	}
	return dups, nil
}

// PublishBatch publishes rec (split to fit maxBody when needed) to subject
// and waits until the stream has stored every part. id makes the publication
// idempotent: publishing the same batch again with the same id within the
// stream's duplicate window stores nothing new. maxBody <= 0 uses the
// connected server's max_payload minus HeaderReserve. It returns the number
// of messages the batch took.
func PublishBatch(ctx context.Context, js jetstream.JetStream, subject string, rec arrow.RecordBatch, id string, maxBody int) (int, error) {
	if maxBody <= 0 {
		maxBody = int(js.Conn().MaxPayload()) - HeaderReserve
	}
	kind, err := schemas.KindOf(rec)
	if err != nil {
		return 0, err
	}
	parts, err := EncodeParts(rec, maxBody, id)
	if err != nil {
		return 0, err
	}
	msgs := make([]*nats.Msg, len(parts))
	for i, p := range parts {
		msgs[i] = partMsg(subject, kind, p, "")
	}
	if _, err := publishParts(ctx, js, msgs); err != nil {
		return 0, err
	}
	recycleMsgs(msgs)
	return len(parts), nil
}

// msgBufs recycles encoded message bodies: a stage encodes a batch of a few
// hundred kilobytes per message, and fresh buffers for each made the garbage
// collector a large share of a hop's cost (docs/benchmarks/pipeline.md).
var msgBufs sync.Pool

func getMsgBuf() []byte {
	if v := msgBufs.Get(); v != nil {
		return *v.(*[]byte)
	}
	return nil
}

func putMsgBuf(b []byte) {
	if cap(b) == 0 {
		return
	}
	b = b[:0]
	msgBufs.Put(&b)
}

// recycleMsgs returns the bodies of published messages to the pool. Call it
// only once every PubAck arrived: until then the client may still need a
// body to retry the publication.
func recycleMsgs(msgs []*nats.Msg) {
	for _, m := range msgs {
		putMsgBuf(m.Data)
		m.Data = nil
	}
}
