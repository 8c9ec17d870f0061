package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Reason says why a message became a dead letter.
type Reason string

// Dead-letter reasons.
const (
	// ReasonInvalidPayload: the payload could not be decoded or failed schema
	// validation (schemas.ErrInvalid).
	ReasonInvalidPayload Reason = "invalid-payload"
	// ReasonPermanentError: the processor returned an error wrapping
	// ErrPermanent, or its output cannot be published at any size.
	ReasonPermanentError Reason = "permanent-error"
	// ReasonMaxDeliveries: the message failed on its last allowed delivery,
	// or the server gave up redelivering it (a worker died holding it each
	// time).
	ReasonMaxDeliveries Reason = "max-deliveries"
)

// ClassTooLarge is the class of a dead letter whose stage output could not
// be published at any size (ErrBatchTooLarge): the runner's own failure,
// beside the processor error classes of stage.Classify.
const ClassTooLarge stage.Class = "too-large"

// deadLetterClass is the class the runner records for cause.
func deadLetterClass(cause error) stage.Class {
	if errors.Is(cause, ErrBatchTooLarge) {
		return ClassTooLarge
	}
	return stage.Classify(cause)
}

// Headers of a dead-letter message. The body is the original payload.
const (
	HeaderReason     = "Wsgrpo-Dlq-Reason"
	HeaderClass      = "Wsgrpo-Dlq-Class"
	HeaderError      = "Wsgrpo-Dlq-Error"
	HeaderStage      = "Wsgrpo-Dlq-Stage"
	HeaderStream     = "Wsgrpo-Dlq-Stream"
	HeaderSubject    = "Wsgrpo-Dlq-Subject"
	HeaderConsumer   = "Wsgrpo-Dlq-Consumer"
	HeaderSequence   = "Wsgrpo-Dlq-Sequence"
	HeaderDeliveries = "Wsgrpo-Dlq-Deliveries"
	HeaderTime       = "Wsgrpo-Dlq-Time"
)

// maxErrorHeader bounds the error text carried in a header.
const maxErrorHeader = 2048

// DeadLetter is one message the pipeline gave up on, with where it came from
// and why.
type DeadLetter struct {
	Reason Reason
	// Class is the class of the error that made it a dead letter: one of
	// stage.ClassInvalid, ClassPermanent, ClassUnavailable (a batch held
	// through an outage and handed back on its last delivery),
	// ClassTransient, or ClassTooLarge. It is "" for a record written
	// before dead letters carried their class.
	Class      stage.Class
	Error      string
	Stage      string
	Stream     string
	Subject    string
	Consumer   string
	Sequence   uint64 // stream sequence of the original message
	Deliveries uint64 // how many times it was delivered
	Time       time.Time
	Payload    []byte // the original message body, unchanged
}

// Msg returns d as a NATS message on subject, with a Nats-Msg-Id derived
// from the source stream and sequence so that a dead letter recorded twice
// (by two workers, or before and after a crash) is stored once.
func (d DeadLetter) Msg(subject string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = d.Payload
	m.Header.Set(HeaderReason, string(d.Reason))
	if d.Class != "" {
		m.Header.Set(HeaderClass, string(d.Class))
	}
	m.Header.Set(HeaderError, headerSafe(d.Error))
	m.Header.Set(HeaderStage, d.Stage)
	m.Header.Set(HeaderStream, d.Stream)
	m.Header.Set(HeaderSubject, d.Subject)
	m.Header.Set(HeaderConsumer, d.Consumer)
	m.Header.Set(HeaderSequence, strconv.FormatUint(d.Sequence, 10))
	m.Header.Set(HeaderDeliveries, strconv.FormatUint(d.Deliveries, 10))
	m.Header.Set(HeaderTime, d.Time.UTC().Format(time.RFC3339Nano))
	m.Header.Set(jetstream.MsgIDHeader, "dlq."+d.Stream+"."+d.Consumer+"."+strconv.FormatUint(d.Sequence, 10))
	return m
}

// headerSafe keeps s on one line and within maxErrorHeader bytes.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r < 0x20 && r != '\t' {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorHeader {
		s = s[:maxErrorHeader]
	}
	return strings.ToValidUTF8(s, "?")
}

// DecodeDeadLetter parses a dead-letter message (headers and body). It
// returns ErrDeadLetter for a message that lacks a field or holds a bad value.
func DecodeDeadLetter(h nats.Header, body []byte) (DeadLetter, error) {
	var d DeadLetter
	get := func(k string) (string, error) {
		v := h.Values(k)
		if len(v) != 1 {
			return "", fmt.Errorf("%w: header %s appears %d times", ErrDeadLetter, k, len(v))
		}
		return v[0], nil
	}
	var err error
	var reason, seq, dels, ts string
	for _, f := range []struct {
		key string
		dst *string
	}{
		{HeaderReason, &reason}, {HeaderError, &d.Error}, {HeaderStage, &d.Stage},
		{HeaderStream, &d.Stream}, {HeaderSubject, &d.Subject}, {HeaderConsumer, &d.Consumer},
		{HeaderSequence, &seq}, {HeaderDeliveries, &dels}, {HeaderTime, &ts},
	} {
		if *f.dst, err = get(f.key); err != nil {
			return DeadLetter{}, err
		}
	}
	switch r := Reason(reason); r {
	case ReasonInvalidPayload, ReasonPermanentError, ReasonMaxDeliveries:
		d.Reason = r
	default:
		return DeadLetter{}, fmt.Errorf("%w: unknown reason %q", ErrDeadLetter, reason)
	}
	if d.Sequence, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return DeadLetter{}, fmt.Errorf("%w: sequence %q", ErrDeadLetter, seq)
	}
	if d.Deliveries, err = strconv.ParseUint(dels, 10, 64); err != nil {
		return DeadLetter{}, fmt.Errorf("%w: deliveries %q", ErrDeadLetter, dels)
	}
	if d.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return DeadLetter{}, fmt.Errorf("%w: time %q", ErrDeadLetter, ts)
	}
	if d.Stage == "" || d.Stream == "" {
		return DeadLetter{}, fmt.Errorf("%w: empty stage or stream", ErrDeadLetter)
	}
	switch c := h.Values(HeaderClass); len(c) {
	case 0:
		// Written before dead letters carried their class.
	case 1:
		switch k := stage.Class(c[0]); k {
		case stage.ClassInvalid, stage.ClassPermanent, stage.ClassUnavailable, stage.ClassTransient, ClassTooLarge:
			d.Class = k
		default:
			return DeadLetter{}, fmt.Errorf("%w: unknown class %q", ErrDeadLetter, c[0])
		}
	default:
		return DeadLetter{}, fmt.Errorf("%w: header %s appears %d times", ErrDeadLetter, HeaderClass, len(c))
	}
	d.Payload = body
	return d, nil
}

// ReadDeadLetters returns up to limit dead letters of the run, oldest first
// (limit <= 0: all of them). A message of the dead-letter stream that is
// not a well-formed record stops it with an error wrapping ErrDeadLetter;
// ScanDeadLetters passes such messages on instead.
func ReadDeadLetters(ctx context.Context, js jetstream.JetStream, t Topology, limit int) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, t.DeadLetterStream())
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	out := []DeadLetter{}
	errEnough := errors.New("enough")
	err = ScanDeadLetters(ctx, s, func(e DeadLetterEntry) error {
		if limit > 0 && len(out) >= limit {
			return errEnough
		}
		if e.Bad != nil {
			return fmt.Errorf("dead letter %d: %w", e.Seq, e.Bad)
		}
		out = append(out, e.Letter)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return out, err
	}
	return out, nil
}
