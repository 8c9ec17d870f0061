package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// Default sizes and limits of the topology.
const (
	// DefaultMaxPayload is the max_payload the embedded server is started
	// with: a 256-row rollout batch of 512 completion tokens with logprobs
	// encodes to about 1.3 MB (see docs/benchmarks/pipeline.md), so 8 MiB
	// leaves room for longer completions.
	DefaultMaxPayload = 8 << 20
	// HeaderReserve is the part of the server's max_payload kept free for
	// message headers: data streams accept bodies up to
	// max_payload-HeaderReserve, so a dead letter (original body plus its
	// headers) always fits in one message.
	HeaderReserve = 16 << 10
	// DefaultDuplicateWindow is how long JetStream remembers a Nats-Msg-Id
	// for de-duplication of re-published outputs.
	DefaultDuplicateWindow = 10 * time.Minute
	// maxNameLen bounds run ids and stage names so derived names stay under
	// the server's limits.
	maxNameLen = 64
)

// Errors of a run's labeler setting (Topology.NoLabeler). Both wrap
// ErrInvalidConfig; callers test them with errors.Is.
var (
	// ErrNoLabeler is returned when a run without a labeler is asked for
	// what only a labeler provides: the labeled hop, the labeler or learner
	// stage, or consumers of the labeled stream.
	ErrNoLabeler = fmt.Errorf("%w: the run has no labeler", ErrInvalidConfig)
	// ErrLayoutMismatch is returned by Ensure when a stream of the run
	// already exists with another retention policy than the topology
	// wants: the run was created with a labeler and is now opened without
	// one, or the other way round. Every process of a run must agree on
	// NoLabeler.
	ErrLayoutMismatch = fmt.Errorf("%w: the run's streams were created with another labeler setting", ErrInvalidConfig)
)

// Prefix is the first token of every subject and the first word of every
// stream and bucket name.
const Prefix = "wsgrpo"

// Hop is one hand-off between stages: a stream with one subject.
type Hop struct {
	Kind      schemas.Kind
	Stream    string
	Subject   string
	Retention jetstream.RetentionPolicy
}

// Topology names and creates the JetStream resources of one run. Every name
// derives from Run, so two runs on one server never share a stream, subject,
// consumer or bucket.
//
// A run has one of two stream layouts. With a labeler (the zero value):
// prompt -> rollout -> verified -> labeled, where the verified stream is a
// work queue the labeler drains and the labeled stream keeps each batch until
// every one of LabeledConsumers (the learner and the logger) has acknowledged
// it. Without a labeler (NoLabeler, e.g. an eval run): prompt -> rollout ->
// verified, with no labeled stream; the verified stream then keeps each
// batch until every one of VerifiedConsumers (the logger, and any other sink
// named there) has acknowledged it, so none of them competes with another.
type Topology struct {
	// Run is the run id, 1 to 64 characters of [A-Za-z0-9_-].
	Run string
	// Storage is the stream storage; the zero value is file storage.
	Storage jetstream.StorageType
	// Replicas is the stream replica count (0 means 1).
	Replicas int
	// MaxMsgSize caps one message body on the data streams. Zero derives it
	// from the connected server: max_payload - HeaderReserve.
	MaxMsgSize int32
	// MaxAge bounds how long messages stay in the streams (0: forever).
	MaxAge time.Duration
	// Duplicates is the de-duplication window (0: DefaultDuplicateWindow).
	Duplicates time.Duration
	// LabeledConsumers are the durable consumers of the labeled stream,
	// each of which sees every labeled batch (nil: the learner and the
	// trajectory logger). Ensure creates them up front: on an
	// interest-retention stream a message published while no consumer
	// exists is dropped at once, so a sink that starts late would miss
	// batches. Every consumer named here must run, or labeled batches
	// accumulate in the stream waiting for it.
	LabeledConsumers []string
	// NoLabeler selects the layout of a run without a labeler stage (e.g.
	// an eval run): verified batches are the end of the line, there is no
	// labeled stream, and the logger stage reads the verified stream. The
	// verified stream then has interest retention with the durable
	// consumers VerifiedConsumers, like the labeled stream of a run with
	// a labeler. Every process of a run must use the same setting; Ensure
	// returns ErrLayoutMismatch when the run's streams were created with
	// the other one.
	NoLabeler bool
	// VerifiedConsumers are the durable consumers of the verified stream
	// of a run without a labeler, each of which sees every verified batch
	// (nil: the trajectory logger alone). Ensure creates them up front, for
	// the reason given at LabeledConsumers; every consumer named here must
	// run. Only valid with NoLabeler: with a labeler the verified stream is
	// a work queue the labeler drains.
	VerifiedConsumers []string
}

// NewTopology returns the topology of run with default settings, or
// ErrInvalidName.
func NewTopology(run string) (Topology, error) {
	if err := ValidateName(run); err != nil {
		return Topology{}, fmt.Errorf("run id: %w", err)
	}
	return Topology{Run: run}, nil
}

// ValidateName checks a run id, stage or consumer name: 1 to 64 characters of
// [A-Za-z0-9_-].
func ValidateName(s string) error {
	if s == "" || len(s) > maxNameLen {
		return fmt.Errorf("%w: %q must have 1 to %d characters", ErrInvalidName, s, maxNameLen)
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q may only hold A-Z a-z 0-9 _ -", ErrInvalidName, s)
		}
	}
	return nil
}

func (t Topology) streamName(suffix string) string {
	return strings.ToUpper(Prefix) + "_" + t.Run + "_" + suffix
}

// Hop returns the hand-off stream that carries batches of kind k. A run
// without a labeler has no labeled hop: asking for it returns ErrNoLabeler.
func (t Topology) Hop(k schemas.Kind) (Hop, error) {
	ret := jetstream.WorkQueuePolicy
	switch k {
	case schemas.KindPrompt, schemas.KindRollout:
	case schemas.KindVerified:
		if t.NoLabeler {
			// The end of the line: the logger and any other sink each
			// see every verified row.
			ret = jetstream.InterestPolicy
		}
	case schemas.KindLabeled:
		if t.NoLabeler {
			return Hop{}, fmt.Errorf("%w: run %s has no labeled stream", ErrNoLabeler, t.Run)
		}
		// The learner and the trajectory logger each see every labeled row.
		ret = jetstream.InterestPolicy
	default:
		return Hop{}, fmt.Errorf("%w: no hop for kind %q", ErrInvalidConfig, k)
	}
	return Hop{
		Kind:      k,
		Stream:    t.streamName(strings.ToUpper(string(k))),
		Subject:   Prefix + "." + t.Run + "." + string(k),
		Retention: ret,
	}, nil
}

// Hops returns the hand-off streams of the run's layout in pipeline order:
// four with a labeler, three (no labeled stream) without.
func (t Topology) Hops() []Hop {
	out := make([]Hop, 0, len(schemas.Kinds()))
	for _, k := range schemas.Kinds() {
		h, err := t.Hop(k)
		if err == nil {
			out = append(out, h)
		}
	}
	return out
}

// DeadLetterStream returns the name of the run's dead-letter stream.
func (t Topology) DeadLetterStream() string { return t.streamName("DLQ") }

// DeadLetterSubject returns the subject a stage's dead letters go to.
func (t Topology) DeadLetterSubject(stage string) string {
	return Prefix + "." + t.Run + ".dlq." + stage
}

// deadLetterFilter matches every stage's dead letters of this run.
func (t Topology) deadLetterFilter() string { return Prefix + "." + t.Run + ".dlq.>" }

// WeightsBucket returns the name of the Object Store bucket of policy
// weights.
func (t Topology) WeightsBucket() string { return Prefix + "_" + t.Run + "_weights" }

// StateBucket returns the name of the KV bucket of run state.
func (t Topology) StateBucket() string { return Prefix + "_" + t.Run + "_state" }

// GroupsBucket returns the name of the KV bucket of pending groups (see
// GroupStore).
func (t Topology) GroupsBucket() string { return Prefix + "_" + t.Run + "_groups" }

// Stage is the standard wiring of one named stage: where it reads, under
// which durable consumer, and where it writes (Output is nil for a sink).
type Stage struct {
	Name     string
	Input    Hop
	Consumer string
	Output   *Hop
}

// Stage names of the WS-GRPO pipeline.
const (
	StageSampler  = "sampler"
	StageVerifier = "verifier"
	StageLabeler  = "labeler"
	StageLearner  = "learner"
	StageLogger   = "logger"
)

// Stage returns the standard wiring of a pipeline stage (sampler, verifier,
// labeler, learner or logger). The logger reads the labeled stream, or the
// verified stream of a run without a labeler; in such a run the labeler
// and the learner (which trains on labeled rows) return ErrNoLabeler.
func (t Topology) Stage(name string) (Stage, error) {
	var in, out schemas.Kind
	switch name {
	case StageSampler:
		in, out = schemas.KindPrompt, schemas.KindRollout
	case StageVerifier:
		in, out = schemas.KindRollout, schemas.KindVerified
	case StageLabeler, StageLearner:
		if t.NoLabeler {
			return Stage{}, fmt.Errorf("%w: run %s has no %s stage (its verified batches go to the logger)", ErrNoLabeler, t.Run, name)
		}
		if name == StageLabeler {
			in, out = schemas.KindVerified, schemas.KindLabeled
		} else {
			in = schemas.KindLabeled
		}
	case StageLogger:
		in = t.sinkKind()
	default:
		return Stage{}, fmt.Errorf("%w: unknown stage %q", ErrInvalidConfig, name)
	}
	ih, err := t.Hop(in)
	if err != nil {
		return Stage{}, err
	}
	s := Stage{Name: name, Input: ih, Consumer: name}
	if out != "" {
		oh, err := t.Hop(out)
		if err != nil {
			return Stage{}, err
		}
		s.Output = &oh
	}
	return s, nil
}

// SinkRunnerConfig returns the runner configuration, with default
// settings, of the durable consumer name on the run's last hop: the labeled
// stream, or the verified stream of a run without a labeler. name must be
// one of the consumers Ensure creates there (LabeledConsumers or
// VerifiedConsumers, or their defaults), so that it sees every batch,
// including those published before it first ran; other names return
// ErrInvalidConfig. The stage name (metrics, dead letters) is name.
func (t Topology) SinkRunnerConfig(name string) (RunnerConfig, error) {
	names, err := t.sinkConsumers()
	if err != nil {
		return RunnerConfig{}, err
	}
	sink, err := t.Hop(t.sinkKind())
	if err != nil {
		return RunnerConfig{}, err
	}
	if !slices.Contains(names, name) {
		return RunnerConfig{}, fmt.Errorf("%w: %q is not a consumer of run %s's %s stream (Ensure creates %q)",
			ErrInvalidConfig, name, t.Run, sink.Kind, names)
	}
	return RunnerConfig{
		Stage:             name,
		Stream:            sink.Stream,
		Consumer:          name,
		InputKind:         sink.Kind,
		DeadLetterSubject: t.DeadLetterSubject(name),
	}, nil
}

// maxMsgSize returns the body limit of the data streams for a server whose
// max_payload is serverMax.
func (t Topology) maxMsgSize(serverMax int64) (int32, error) {
	if t.MaxMsgSize > 0 {
		if int64(t.MaxMsgSize)+HeaderReserve > serverMax {
			return 0, fmt.Errorf("%w: MaxMsgSize %d plus %d bytes of headers exceeds the server max_payload %d",
				ErrInvalidConfig, t.MaxMsgSize, HeaderReserve, serverMax)
		}
		return t.MaxMsgSize, nil
	}
	if serverMax <= 2*HeaderReserve {
		return 0, fmt.Errorf("%w: server max_payload %d is too small", ErrInvalidConfig, serverMax)
	}
	return int32(serverMax - HeaderReserve), nil
}

// Ensure creates every stream and bucket of the run, and updates those
// that exist with another configuration. It is idempotent and safe to call
// from every process at start-up; on a server that already holds the
// run's streams as configured it changes nothing, so a user without the
// right to update them (Permissions) can call it too.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	if err := ValidateName(t.Run); err != nil {
		return fmt.Errorf("run id: %w", err)
	}
	serverMax := js.Conn().MaxPayload()
	bodyMax, err := t.maxMsgSize(serverMax)
	if err != nil {
		return err
	}
	replicas := max(t.Replicas, 1)
	dups := t.Duplicates
	if dups <= 0 {
		dups = DefaultDuplicateWindow
	}
	sinkConsumers, err := t.sinkConsumers()
	if err != nil {
		return err
	}
	for _, h := range t.Hops() {
		cfg := jetstream.StreamConfig{
			Name:        h.Stream,
			Description: fmt.Sprintf("wsgrpo run %s: %s batches", t.Run, h.Kind),
			Subjects:    []string{h.Subject},
			Retention:   h.Retention,
			Storage:     t.Storage,
			Replicas:    replicas,
			MaxMsgSize:  bodyMax,
			MaxAge:      t.MaxAge,
			Duplicates:  dups,
			Discard:     jetstream.DiscardOld,
		}
		if err := t.checkLayout(ctx, js, h); err != nil {
			return err
		}
		if err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) error {
			return ensureStream(ctx, js, cfg)
		}); err != nil {
			return fmt.Errorf("ensure stream %s: %w", h.Stream, err)
		}
	}
	sink, err := t.Hop(t.sinkKind())
	if err != nil {
		return err
	}
	for _, name := range sinkConsumers {
		cfg := consumerConfig(name, DefaultAckWait, defaultMaxAckPending)
		if err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) error {
			_, err := js.CreateConsumer(ctx, sink.Stream, cfg)
			if errors.Is(err, jetstream.ErrConsumerExists) {
				return nil // keep the settings a running stage gave it
			}
			return err
		}); err != nil {
			return fmt.Errorf("ensure consumer %s on %s: %w", name, sink.Stream, err)
		}
	}
	dlq := jetstream.StreamConfig{
		Name:        t.DeadLetterStream(),
		Description: fmt.Sprintf("wsgrpo run %s: dead letters", t.Run),
		Subjects:    []string{t.deadLetterFilter()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     t.Storage,
		Replicas:    replicas,
		MaxMsgSize:  int32(min(serverMax, int64(^uint32(0)>>1))),
		MaxAge:      t.MaxAge,
		Duplicates:  dups,
	}
	if err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) error {
		return ensureStream(ctx, js, dlq)
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", dlq.Name, err)
	}
	if err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) error {
		return ensureObjectStore(ctx, js, jetstream.ObjectStoreConfig{
			Bucket:      t.WeightsBucket(),
			Description: fmt.Sprintf("wsgrpo run %s: policy weights by version", t.Run),
			Storage:     t.Storage,
			Replicas:    replicas,
		})
	}); err != nil {
		return fmt.Errorf("ensure object store %s: %w", t.WeightsBucket(), err)
	}
	if err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) error {
		_, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
			Bucket:      t.StateBucket(),
			Description: fmt.Sprintf("wsgrpo run %s: run state", t.Run),
			History:     8,
			Storage:     t.Storage,
			Replicas:    replicas,
		})
		return err
	}); err != nil {
		return fmt.Errorf("ensure kv %s: %w", t.StateBucket(), err)
	}
	return nil
}

// sinkKind is the kind of the run's last hop, the one the logger reads.
func (t Topology) sinkKind() schemas.Kind {
	if t.NoLabeler {
		return schemas.KindVerified
	}
	return schemas.KindLabeled
}

// sinkConsumers returns the validated durable consumers Ensure creates on
// the last hop: LabeledConsumers, or VerifiedConsumers without a labeler.
func (t Topology) sinkConsumers() ([]string, error) {
	var names []string
	what := "labeled"
	switch {
	case t.NoLabeler:
		if len(t.LabeledConsumers) > 0 {
			return nil, fmt.Errorf("%w: LabeledConsumers %q given for run %s, which has no labeled stream", ErrNoLabeler, t.LabeledConsumers, t.Run)
		}
		names, what = t.VerifiedConsumers, "verified"
		if names == nil {
			names = []string{StageLogger}
		}
	case t.VerifiedConsumers != nil:
		return nil, fmt.Errorf("%w: VerifiedConsumers %q need NoLabeler: with a labeler the verified stream of run %s is a work queue the labeler drains",
			ErrInvalidConfig, t.VerifiedConsumers, t.Run)
	default:
		names = t.LabeledConsumers
		if names == nil {
			names = []string{StageLearner, StageLogger}
		}
	}
	for _, name := range names {
		if err := ValidateName(name); err != nil {
			return nil, fmt.Errorf("%s consumer: %w", what, err)
		}
	}
	return names, nil
}

// checkLayout returns ErrLayoutMismatch when h's stream exists with another
// retention policy (JetStream cannot change a stream to or from a work
// queue, and doing so would change who sees which batch).
func (t Topology) checkLayout(ctx context.Context, js jetstream.JetStream, h Hop) error {
	var s jetstream.Stream
	err := retryTimeout(ctx, js.Conn(), func(ctx context.Context) (err error) {
		s, err = js.Stream(ctx, h.Stream)
		return err
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", h.Stream, err)
	}
	have := s.CachedInfo().Config.Retention
	if have == h.Retention {
		return nil
	}
	created, opened := "without a labeler (no_labeler)", "with one"
	if t.NoLabeler {
		created, opened = "with a labeler", "without one (no_labeler)"
	}
	return fmt.Errorf("%w: stream %s has %s retention: run %s was created %s, and this process opens it %s; give every process of a run the same NoLabeler (wsgrpo: the no_labeler key, --no-labeler)",
		ErrLayoutMismatch, h.Stream, have, t.Run, created, opened)
}

// consumerConfig is the durable pull consumer every stage uses. It
// redelivers without limit: the runner counts deliveries against its
// MaxDeliver and dead-letters a batch itself, so that one whose dead
// letter cannot be stored is delivered again later instead of being
// dropped by the server.
func consumerConfig(name string, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "wsgrpo stage " + name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// MaxBodySize returns the largest message body the run's data streams accept
// on the connected server.
func (t Topology) MaxBodySize(js jetstream.JetStream) (int, error) {
	n, err := t.maxMsgSize(js.Conn().MaxPayload())
	return int(n), err
}

// Delete removes every stream and bucket of the run, of either layout,
// the groups bucket (GroupStore) included.
func (t Topology) Delete(ctx context.Context, js jetstream.JetStream) error {
	names := []string{t.DeadLetterStream()}
	for _, k := range schemas.Kinds() {
		names = append(names, t.streamName(strings.ToUpper(string(k))))
	}
	for _, n := range names {
		if err := js.DeleteStream(ctx, n); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete stream %s: %w", n, err)
		}
	}
	if err := js.DeleteObjectStore(ctx, t.WeightsBucket()); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete object store: %w", err)
	}
	for _, b := range []string{t.StateBucket(), t.GroupsBucket()} {
		if err := js.DeleteKeyValue(ctx, b); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete kv %s: %w", b, err)
		}
	}
	return nil
}

// apiAttempts bounds retries of a JetStream API call that timed out.
const apiAttempts = 5

// retryTimeout runs call until it succeeds, fails with something other than
// a timeout, or has timed out apiAttempts times. A busy server (or a slow
// disk) can take longer than the client's 5 s API timeout to create a file
// stream; the create-or-update calls are idempotent, so trying again is safe.
// A timeout after the server reported a permissions violation on nc (a
// refused request gets no reply) is not retried: it is returned with the
// violation (WithRefusal).
func retryTimeout(ctx context.Context, nc *nats.Conn, call func(context.Context) error) error {
	var err error
	for range apiAttempts {
		err = call(ctx)
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if err == nil || !timedOut || ctx.Err() != nil {
			return err
		}
		if refused := WithRefusal(nc, err); errors.Is(refused, nats.ErrPermissionViolation) {
			return refused
		}
	}
	return err
}
