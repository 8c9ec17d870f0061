package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgrpo/wsgrpo/stages/stage"
)

func TestDeadLetterRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   DeadLetter
	}{
		{"plain", DeadLetter{Reason: ReasonInvalidPayload, Class: stage.ClassInvalid, Error: "bad", Stage: "verifier", Stream: "S", Subject: "s", Consumer: "verifier", Sequence: 7, Deliveries: 1, Payload: []byte{1, 2}}},
		{"multi-line error", DeadLetter{Reason: ReasonMaxDeliveries, Error: "a\nb\r\nc", Stage: "x", Stream: "S", Deliveries: 5}},
		{"long error", DeadLetter{Reason: ReasonPermanentError, Class: ClassTooLarge, Error: strings.Repeat("e", 5000), Stage: "x", Stream: "S"}},
		{"no class (older record)", DeadLetter{Reason: ReasonPermanentError, Error: "x", Stage: "x", Stream: "S"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Time = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
			m := tc.in.Msg("dlq")
			got, err := DecodeDeadLetter(m.Header, m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(got.Error, "\r\n") || len(got.Error) > maxErrorHeader {
				t.Errorf("error header not sanitised: %q", got.Error)
			}
			got.Error = tc.in.Error
			if got.Reason != tc.in.Reason || got.Class != tc.in.Class || got.Sequence != tc.in.Sequence || got.Deliveries != tc.in.Deliveries ||
				!got.Time.Equal(tc.in.Time) || string(got.Payload) != string(tc.in.Payload) || got.Stage != tc.in.Stage {
				t.Errorf("round trip: got %+v, want %+v", got, tc.in)
			}
		})
	}
}

func TestDecodeDeadLetterRejects(t *testing.T) {
	good := DeadLetter{Reason: ReasonInvalidPayload, Stage: "s", Stream: "S", Time: time.Now()}.Msg("dlq")
	for _, tc := range []struct {
		name string
		mut  func(nats.Header)
	}{
		{"missing reason", func(h nats.Header) { h.Del(HeaderReason) }},
		{"unknown reason", func(h nats.Header) { h.Set(HeaderReason, "whim") }},
		{"bad sequence", func(h nats.Header) { h.Set(HeaderSequence, "-1") }},
		{"bad deliveries", func(h nats.Header) { h.Set(HeaderDeliveries, "x") }},
		{"bad time", func(h nats.Header) { h.Set(HeaderTime, "yesterday") }},
		{"duplicate header", func(h nats.Header) { h.Add(HeaderStage, "t") }},
		{"empty stage", func(h nats.Header) { h.Set(HeaderStage, "") }},
		{"unknown class", func(h nats.Header) { h.Set(HeaderClass, "bad-luck") }},
		{"two classes", func(h nats.Header) { h.Set(HeaderClass, "invalid"); h.Add(HeaderClass, "permanent") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := nats.Header{}
			for k, v := range good.Header {
				h[k] = append([]string(nil), v...)
			}
			tc.mut(h)
			if _, err := DecodeDeadLetter(h, nil); !errors.Is(err, ErrDeadLetter) {
				t.Fatalf("DecodeDeadLetter = %v, want ErrDeadLetter", err)
			}
		})
	}
}

// FuzzDecodeDeadLetter feeds arbitrary header values to the decoder: it must
// never panic, and whatever it accepts must survive a re-encode unchanged.
func FuzzDecodeDeadLetter(f *testing.F) {
	f.Add("invalid-payload", "invalid", "err", "stage", "S", "7", "1", "2026-01-02T03:04:05Z", []byte{1})
	f.Add("max-deliveries", "", "", "x", "y", "0", "18446744073709551615", "bad", []byte(nil))
	f.Fuzz(func(t *testing.T, reason, class, errText, stage, stream, seq, dels, ts string, body []byte) {
		h := nats.Header{}
		h.Set(HeaderReason, reason)
		if class != "" {
			h.Set(HeaderClass, class)
		}
		h.Set(HeaderError, errText)
		h.Set(HeaderStage, stage)
		h.Set(HeaderStream, stream)
		h.Set(HeaderSubject, "s")
		h.Set(HeaderConsumer, "c")
		h.Set(HeaderSequence, seq)
		h.Set(HeaderDeliveries, dels)
		h.Set(HeaderTime, ts)
		d, err := DecodeDeadLetter(h, body)
		if err != nil {
			if !errors.Is(err, ErrDeadLetter) {
				t.Fatalf("error %v does not match ErrDeadLetter", err)
			}
			return
		}
		m := d.Msg("dlq")
		d2, err := DecodeDeadLetter(m.Header, m.Data)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if d2.Reason != d.Reason || d2.Class != d.Class || d2.Sequence != d.Sequence || d2.Deliveries != d.Deliveries || !d2.Time.Equal(d.Time) || string(d2.Payload) != string(d.Payload) {
			t.Fatalf("re-decode differs: %+v vs %+v", d2, d)
		}
	})
}
