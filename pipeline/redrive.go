package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// Errors of a redrive. Every refusal matches ErrRedriveRefused; when one is
// returned by Check, nothing was published or removed.
var (
	// ErrRedriveRefused is matched by every refusal of a redrive.
	ErrRedriveRefused = errors.New("redrive refused")
	// ErrRedriveCannotSucceed: the dead letter would only fail the same
	// way again: a payload that does not decode as its stream's schema,
	// rows the stage rejected as invalid (stage.ClassInvalid), an output
	// too large to publish (ClassTooLarge). Forcing overrides it.
	ErrRedriveCannotSucceed = fmt.Errorf("%w: it would be dead-lettered again", ErrRedriveRefused)
	// ErrRedriveSharedStream: the dead letter came from a stream whose
	// every consumer sees every message (interest retention, e.g. the
	// labeled stream read by the learner and the logger), so re-publishing
	// it delivers it again to the other consumers as well. Forcing
	// overrides it.
	ErrRedriveSharedStream = fmt.Errorf("%w: other consumers of its stream would receive it again", ErrRedriveRefused)
	// ErrRedriveNoConsumer: the consumer that dead-lettered the message no
	// longer exists on its interest-retention stream, so a re-published
	// copy would not reach it. Forcing overrides it.
	ErrRedriveNoConsumer = fmt.Errorf("%w: the failed stage's consumer is gone", ErrRedriveRefused)
	// ErrRedriveOrigin: the dead letter's original stream or subject is not
	// one of the run's, or no longer exists. Forcing does not override it.
	ErrRedriveOrigin = fmt.Errorf("%w: its original stream cannot take it", ErrRedriveRefused)
	// ErrRedriveIncomplete is returned when a redrive stopped part way (a
	// publish or a removal failed). A dead letter not reported as
	// redriven is still in the dead-letter stream; redriving it again
	// finishes the work without publishing anything twice within the
	// original stream's duplicate window.
	ErrRedriveIncomplete = errors.New("redrive incomplete")
)

// HeaderRedrive marks a re-published dead letter with the dead-letter
// stream and sequence it came from.
const HeaderRedrive = "Wsgrpo-Redrive"

// DeadLetterEntry is one message of a dead-letter stream as stored: a
// well-formed record (Letter) or, for a message that is not one, the
// decoding error (Bad).
type DeadLetterEntry struct {
	Seq    uint64    // sequence in the dead-letter stream
	Stored time.Time // when the dead-letter stream stored it
	Size   int       // payload bytes
	Letter DeadLetter
	Bad    error // not a well-formed dead-letter record (Letter is empty); wraps ErrDeadLetter
}

// Time is when the message was dead-lettered, or stored for a malformed
// one.
func (e DeadLetterEntry) Time() time.Time {
	if e.Bad != nil || e.Letter.Time.IsZero() {
		return e.Stored
	}
	return e.Letter.Time
}

func entryOf(raw *jetstream.RawStreamMsg) DeadLetterEntry {
	e := DeadLetterEntry{Seq: raw.Sequence, Stored: raw.Time, Size: len(raw.Data)}
	e.Letter, e.Bad = DecodeDeadLetter(raw.Header, raw.Data)
	return e
}

// ScanDeadLetters calls fn with every message of the dead-letter stream
// dlq, oldest first, reading one at a time; it stops at fn's first error
// and returns it. Malformed messages are passed on with Bad set.
func ScanDeadLetters(ctx context.Context, dlq jetstream.Stream, fn func(DeadLetterEntry) error) error {
	for seq := uint64(1); ; {
		raw, err := dlq.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read dead-letter stream %s from sequence %d: %w", dlq.CachedInfo().Config.Name, seq, err)
		}
		if err := fn(entryOf(raw)); err != nil {
			return err
		}
		seq = raw.Sequence + 1
	}
}

// GetDeadLetter reads the message at sequence seq of the dead-letter
// stream dlq. It returns jetstream.ErrMsgNotFound (wrapped) when there is
// none.
func GetDeadLetter(ctx context.Context, dlq jetstream.Stream, seq uint64) (DeadLetterEntry, error) {
	raw, err := dlq.GetMsg(ctx, seq)
	if err != nil {
		return DeadLetterEntry{}, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	return entryOf(raw), nil
}

// origin is what a redrive needs to know about a dead letter's original
// stream.
type origin struct {
	hop       Hop
	retention jetstream.RetentionPolicy
	subjects  []string
	consumers []string
	dupWindow time.Duration
	err       error // the stream could not be read
}

// Redriver checks the dead letters of one run against the redrive rules
// and publishes the ones that pass back to the subject they came from.
// It reads each original stream once. It is not safe for concurrent use.
type Redriver struct {
	js      jetstream.JetStream
	dlq     jetstream.Stream
	topo    Topology
	hops    map[string]Hop // the run's data streams by name, either layout
	origins map[string]*origin
}

// NewRedriver returns a Redriver for the run of topo, whose dead-letter
// stream is dlq.
func NewRedriver(js jetstream.JetStream, dlq jetstream.Stream, topo Topology) *Redriver {
	r := &Redriver{js: js, dlq: dlq, topo: topo, hops: map[string]Hop{}, origins: map[string]*origin{}}
	for _, h := range (Topology{Run: topo.Run}).Hops() {
		r.hops[h.Stream] = h
	}
	return r
}

// RedrivePlan is a dead letter that passed Check.
type RedrivePlan struct {
	Seq    uint64     // sequence in the dead-letter stream
	Letter DeadLetter // the record, without its payload
	Rows   int64      // rows of the payload; -1 when it does not decode
	// Forced are the refusals that force overrode (empty without force):
	// what the redrive will do that the rules advise against.
	Forced []error
	origin *origin
}

// RowsText describes the payload's rows for a message.
func (p RedrivePlan) RowsText() string {
	if p.Rows < 0 {
		return "payload does not decode"
	}
	return strconv.FormatInt(p.Rows, 10) + " rows"
}

// Check decides whether the dead letter e may be redriven, and returns its
// plan or why not (matching ErrRedriveRefused). The rules:
//
//   - refused even with force (ErrRedriveOrigin): the original stream is
//     not one of the run's data streams, no longer exists, or no longer
//     takes the subject;
//   - ErrRedriveCannotSucceed: the payload does not decode as its
//     stream's kind, or the stage dead-lettered it with class
//     stage.ClassInvalid (it rejected the rows) or ClassTooLarge (its
//     output could not be published at any size);
//   - ErrRedriveSharedStream: the stream has interest retention and
//     consumers other than the one that failed, which would receive the
//     copy too;
//   - ErrRedriveNoConsumer: on such a stream, the failed consumer no
//     longer exists.
//
// With force the last three are returned in the plan's Forced instead.
// Dead letters written before records carried their class are judged on
// their payload and stream alone.
func (r *Redriver) Check(ctx context.Context, e DeadLetterEntry, force bool) (RedrivePlan, error) {
	if e.Bad != nil {
		return RedrivePlan{}, fmt.Errorf("%w: dead letter %d is malformed: %w", ErrRedriveRefused, e.Seq, e.Bad)
	}
	d := e.Letter
	p := RedrivePlan{Seq: e.Seq, Letter: d, Rows: -1}
	p.Letter.Payload = nil
	what := fmt.Sprintf("dead letter %d (stage %s, %s, from %s:%d)", e.Seq, d.Stage, d.Reason, d.Stream, d.Sequence)
	hop, ok := r.hops[d.Stream]
	if !ok {
		return p, fmt.Errorf("%w: %s: %s is not a data stream of run %s; --force does not help", ErrRedriveOrigin, what, d.Stream, r.topo.Run)
	}
	if d.Subject != hop.Subject {
		return p, fmt.Errorf("%w: %s: subject %q is not %s's subject %s; --force does not help", ErrRedriveOrigin, what, d.Subject, d.Stream, hop.Subject)
	}
	o := r.origin(ctx, d.Stream)
	if errors.Is(o.err, jetstream.ErrStreamNotFound) {
		return p, fmt.Errorf("%w: %s: stream %s no longer exists (start the run's stages, which create it, then try again)", ErrRedriveOrigin, what, d.Stream)
	}
	if o.err != nil {
		return p, fmt.Errorf("%s: stream %s: %w", what, d.Stream, o.err)
	}
	if !slices.Contains(o.subjects, d.Subject) {
		return p, fmt.Errorf("%w: %s: stream %s no longer takes subject %s; --force does not help", ErrRedriveOrigin, what, d.Stream, d.Subject)
	}
	p.origin = o

	var forceable []error
	rec, decodeErr := schemas.Decode(hop.Kind, d.Payload, nil)
	if decodeErr == nil {
		p.Rows = rec.NumRows()
		rec.Release()
	}
	switch {
	case decodeErr != nil:
		forceable = append(forceable, fmt.Errorf("%w: %s: its payload does not decode as a %s batch (%v), so the %s stage would dead-letter the same bytes again as invalid-payload; it cannot be fixed by redriving (give --force only if the stage reads it differently now)",
			ErrRedriveCannotSucceed, what, hop.Kind, decodeErr, d.Stage))
	case d.Reason == ReasonPermanentError && d.Class == stage.ClassInvalid:
		forceable = append(forceable, fmt.Errorf("%w: %s: the stage rejected its rows as invalid (%s), and would reject the same rows again; give --force once the stage accepts them",
			ErrRedriveCannotSucceed, what, clip(d.Error, 200)))
	case d.Reason == ReasonPermanentError && d.Class == ClassTooLarge:
		forceable = append(forceable, fmt.Errorf("%w: %s: the stage's output for it could not be published at any size (%s); give --force once the stage's output fits",
			ErrRedriveCannotSucceed, what, clip(d.Error, 200)))
	}
	if o.retention != jetstream.WorkQueuePolicy {
		others := slices.DeleteFunc(slices.Clone(o.consumers), func(c string) bool { return c == d.Consumer })
		if !slices.Contains(o.consumers, d.Consumer) {
			reach := "it would be dropped at once: no consumer is left"
			if len(others) > 0 {
				reach = "it would reach only " + strings.Join(others, ", ")
			}
			forceable = append(forceable, fmt.Errorf("%w: %s: consumer %q no longer exists on %s, which has %s retention; %s, not the %s stage (start the stage, which recreates its consumer, then try again)",
				ErrRedriveNoConsumer, what, d.Consumer, d.Stream, retentionName(o.retention), reach, d.Stage))
		} else if len(others) > 0 {
			forceable = append(forceable, fmt.Errorf("%w: %s: stream %s has %s retention: each of its consumers (%s) receives every message, so re-publishing delivers the batch again to %s as well, not only to %s%s; give --force to accept that",
				ErrRedriveSharedStream, what, d.Stream, retentionName(o.retention), strings.Join(o.consumers, ", "), strings.Join(others, ", "), d.Consumer, effects(others)))
		}
	}
	if len(forceable) == 0 {
		return p, nil
	}
	if !force {
		return p, errors.Join(forceable...)
	}
	p.Forced = forceable
	return p, nil
}

// origin returns what is known about a data stream of the run, read once.
func (r *Redriver) origin(ctx context.Context, name string) *origin {
	if o, ok := r.origins[name]; ok {
		return o
	}
	o := &origin{hop: r.hops[name]}
	r.origins[name] = o
	st, err := r.js.Stream(ctx, name)
	if err != nil {
		o.err = err
		return o
	}
	info := st.CachedInfo()
	o.retention, o.subjects, o.dupWindow = info.Config.Retention, info.Config.Subjects, info.Config.Duplicates
	if o.retention != jetstream.WorkQueuePolicy {
		names := st.ConsumerNames(ctx)
		for n := range names.Name() {
			o.consumers = append(o.consumers, n)
		}
		if err := names.Err(); err != nil {
			o.err = fmt.Errorf("list consumers: %w", err)
		}
		slices.Sort(o.consumers)
	}
	return o
}

// effects says what a second delivery means to the standard sinks.
func effects(consumers []string) string {
	var parts []string
	if slices.Contains(consumers, StageLearner) {
		parts = append(parts, "the learner would train on it a second time")
	}
	if slices.Contains(consumers, StageLogger) {
		parts = append(parts, "the logger would log its rows again (replacing the logged copies)")
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", and ")
}

// retentionName is the retention policy in lower case.
func retentionName(p jetstream.RetentionPolicy) string {
	return strings.ToLower(p.String())
}

// clip cuts s to at most n runes. (Error texts of dead letters are on one
// line already: Msg writes them so.)
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Redriven is what Redrive did with one dead letter.
type Redriven struct {
	Letter DeadLetter // the record, without its payload
	// Gone: the entry had left the dead-letter stream meanwhile (redriven
	// or removed by someone else); nothing was published.
	Gone bool
	// Duplicate: an earlier redrive had already published the copy; it
	// was only removed now.
	Duplicate bool
	// Sequence is the copy's sequence in the original stream.
	Sequence uint64
}

// Redrive publishes the dead letter of plan p back to its original subject
// and, once the server has stored the copy, removes it from the
// dead-letter stream. The copy's message id derives from the dead-letter
// stream and sequence, so repeating a redrive that stopped between the
// publish and the removal publishes nothing twice within the original
// stream's duplicate window. A failure returns an error wrapping
// ErrRedriveIncomplete that says what is left.
func (r *Redriver) Redrive(ctx context.Context, p RedrivePlan) (Redriven, error) {
	dlqName := r.dlq.CachedInfo().Config.Name
	e, err := GetDeadLetter(ctx, r.dlq, p.Seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Redriven{Letter: p.Letter, Gone: true}, nil
	}
	if err != nil {
		return Redriven{}, fmt.Errorf("%w: %w", ErrRedriveIncomplete, err)
	}
	if e.Bad != nil {
		return Redriven{}, fmt.Errorf("%w: dead letter %d: %w", ErrRedriveIncomplete, p.Seq, e.Bad)
	}
	d := e.Letter
	res := Redriven{Letter: d}
	res.Letter.Payload = nil
	id := dlqName + ":" + strconv.FormatUint(p.Seq, 10)
	m := nats.NewMsg(d.Subject)
	m.Data = d.Payload
	m.Header.Set(jetstream.MsgIDHeader, "redrive:"+id)
	if p.origin != nil {
		m.Header.Set(HeaderKind, string(p.origin.hop.Kind))
	}
	if p.Rows >= 0 {
		m.Header.Set(HeaderRows, strconv.FormatInt(p.Rows, 10))
	}
	m.Header.Set(HeaderSource, d.Stream+":"+strconv.FormatUint(d.Sequence, 10))
	m.Header.Set(HeaderRedrive, id)
	ack, err := r.js.PublishMsg(ctx, m, jetstream.WithExpectStream(d.Stream))
	if err != nil {
		return res, fmt.Errorf("%w: publish dead letter %d to %s: %w; it is still in %s: run the same command again",
			ErrRedriveIncomplete, p.Seq, d.Subject, err, dlqName)
	}
	res.Sequence, res.Duplicate = ack.Sequence, ack.Duplicate
	if err := r.dlq.DeleteMsg(ctx, p.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		window := DefaultDuplicateWindow
		if p.origin != nil && p.origin.dupWindow > 0 {
			window = p.origin.dupWindow
		}
		return res, fmt.Errorf("%w: dead letter %d was published to %s (stream %s sequence %d) but could not be removed from %s: %w; it is still there: run the same command again within %s (the duplicate window of %s) to remove it without publishing it twice",
			ErrRedriveIncomplete, p.Seq, d.Subject, d.Stream, ack.Sequence, dlqName, err, window, d.Stream)
	}
	return res, nil
}
