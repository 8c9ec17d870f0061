package pipeline

import (
	"fmt"
	"slices"

	"github.com/wsgrpo/wsgrpo/schemas"
)

// Principals of a secured deployment besides the five stages (StageSampler
// and the others), each a NATS user of its own.
const (
	// PrincipalSource is the prompt source (package prompts): it publishes
	// the run's prompt batches and its progress, and reads the learner's.
	PrincipalSource = "source"
	// PrincipalAdmin may do anything: the operator's tools (wsgrpo dlq,
	// a train or eval driver against the shared server) and stream
	// maintenance.
	PrincipalAdmin = "admin"
)

// Principals returns the NATS users of a secured deployment, in a fixed
// order: the five stages, the prompt source and the administrator.
func Principals() []string {
	return []string{StageSampler, StageVerifier, StageLabeler, StageLearner, StageLogger, PrincipalSource, PrincipalAdmin}
}

// InboxPrefix returns the reply-subject prefix of principal's connections:
// a user may subscribe only to its own replies, so it cannot read the
// batches JetStream delivers to another stage's pulls. Clients set it
// with nats.CustomInboxPrefix.
func InboxPrefix(principal string) string { return "_INBOX_" + principal }

// Run-state keys of the prompt source and the learner's progress (package
// prompts), each written by one principal only (Permissions).
const (
	// StateKeyLearnerStep holds the last training step the learner
	// finished.
	StateKeyLearnerStep = "learner.step"
	// StateKeySourceStep holds the last step the prompt source published.
	StateKeySourceStep = "source.step"
)

// Permissions are the subjects one NATS user may publish to and subscribe
// to (the server's allow lists; anything else is refused).
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// JetStream API and data subjects. Every subject a stage touches on the
// server goes through these, so Permissions names them the way the client
// library (nats.go) and the server spell them.
const (
	jsAPI = "$JS.API."
	// jsAck is the v1 reply subject of a delivered message:
	// $JS.ACK.<stream>.<consumer>.<counters...>; jsAckV2 inserts the
	// domain and account hash (the server's js_ack_format_v2 flag).
	jsAck   = "$JS.ACK."
	jsAckV2 = "$JS.ACK.*.*."
	// jsFC and jsFCV2 are the flow-control replies of push consumers
	// (the ordered consumers behind KV watches and object reads).
	jsFC   = "$JS.FC."
	jsFCV2 = "$JS.FC.*.*."
)

// kvStream and objStream are the streams behind a KV bucket and an object
// store bucket.
func kvStream(bucket string) string  { return "KV_" + bucket }
func objStream(bucket string) string { return "OBJ_" + bucket }

// permSet collects allow lists without duplicates.
type permSet struct{ pub, sub []string }

func (p *permSet) publish(subjects ...string) {
	for _, s := range subjects {
		if !slices.Contains(p.pub, s) {
			p.pub = append(p.pub, s)
		}
	}
}

func (p *permSet) subscribe(subjects ...string) {
	for _, s := range subjects {
		if !slices.Contains(p.sub, s) {
			p.sub = append(p.sub, s)
		}
	}
}

// consume lets the user read stream through durable consumer: create it,
// pull from it and acknowledge (runner.go; the runner counts deliveries
// itself, so it needs no advisory and no message lookup).
func (p *permSet) consume(stream, consumer string) {
	p.publish(
		jsAPI+"CONSUMER.CREATE."+stream+"."+consumer,
		jsAPI+"CONSUMER.CREATE."+stream+"."+consumer+".>",
		jsAPI+"CONSUMER.INFO."+stream+"."+consumer,
		jsAPI+"CONSUMER.MSG.NEXT."+stream+"."+consumer,
		jsAck+stream+"."+consumer+".>",
		jsAckV2+stream+"."+consumer+".>",
	)
}

// read lets the user read a KV or object store stream: look messages up
// and follow them with ordered consumers (watches, object reads).
func (p *permSet) read(stream string) {
	p.publish(
		jsAPI+"STREAM.INFO."+stream,
		jsAPI+"STREAM.MSG.GET."+stream,
		jsAPI+"DIRECT.GET."+stream,
		jsAPI+"DIRECT.GET."+stream+".>",
		jsAPI+"CONSUMER.CREATE."+stream+".>",
		jsAPI+"CONSUMER.INFO."+stream+".*",
		jsAPI+"CONSUMER.DELETE."+stream+".*",
		jsFC+stream+".>",
		jsFCV2+stream+".>",
	)
}

// kvWrite lets the user write key (a KV key, or a pattern of keys) of
// bucket.
func (p *permSet) kvWrite(bucket, key string) {
	p.publish("$KV." + bucket + "." + key)
}

// Permissions returns what principal (a stage name, PrincipalSource or
// PrincipalAdmin) may do on the NATS server for run t, derived from the
// same names the stages use, so that the server's rules cannot drift from
// the code:
//
//   - every stage may create the run's streams and buckets (Ensure runs in
//     every process, in any order) and look them up, but only the learner
//     and the admin may change their configuration, and only the admin
//     may delete or purge them;
//   - a stage publishes only its own output hop and its own dead letters,
//     and reads only its own input through its own durable consumer;
//   - the policy weights (the object store) and the announced policy
//     version are the learner's alone to write: samplers read them;
//   - run-state keys are written by their owner only: lock.learner,
//     policy.version and learner.step by the learner, source.step by the
//     prompt source;
//   - replies come back on the principal's own inbox (InboxPrefix).
//
// An unknown principal, or a stage the run's layout lacks (the labeler
// or learner of a NoLabeler run), returns ErrInvalidConfig.
func (t Topology) Permissions(principal string) (Permissions, error) {
	if err := ValidateName(t.Run); err != nil {
		return Permissions{}, fmt.Errorf("run id: %w", err)
	}
	if principal == PrincipalAdmin {
		return Permissions{Publish: []string{">"}, Subscribe: []string{">"}}, nil
	}
	var p permSet
	p.subscribe(InboxPrefix(principal) + ".>")
	// Joining the run: Topology.Ensure.
	streams := []string{t.DeadLetterStream(), objStream(t.WeightsBucket()), kvStream(t.StateBucket())}
	for _, h := range t.Hops() {
		streams = append(streams, h.Stream)
	}
	p.publish(jsAPI + "INFO")
	for _, s := range streams {
		p.publish(jsAPI+"STREAM.INFO."+s, jsAPI+"STREAM.CREATE."+s)
	}
	sinkNames, err := t.sinkConsumers()
	if err != nil {
		return Permissions{}, err
	}
	sink, err := t.Hop(t.sinkKind())
	if err != nil {
		return Permissions{}, err
	}
	for _, c := range sinkNames {
		p.publish(jsAPI+"CONSUMER.CREATE."+sink.Stream+"."+c, jsAPI+"CONSUMER.CREATE."+sink.Stream+"."+c+".>")
	}
	state := t.StateBucket()
	switch principal {
	case PrincipalSource:
		hop, err := t.Hop(schemas.KindPrompt)
		if err != nil {
			return Permissions{}, err
		}
		p.publish(hop.Subject)
		p.read(kvStream(state))
		p.kvWrite(state, StateKeySourceStep)
		return p.done(), nil
	case StageSampler, StageVerifier, StageLabeler, StageLearner, StageLogger:
	default:
		return Permissions{}, fmt.Errorf("%w: unknown principal %q (known: %q)", ErrInvalidConfig, principal, Principals())
	}
	st, err := t.Stage(principal)
	if err != nil {
		return Permissions{}, err
	}
	p.consume(st.Input.Stream, st.Consumer)
	if st.Output != nil {
		p.publish(st.Output.Subject)
	}
	p.publish(t.DeadLetterSubject(principal))
	switch principal {
	case StageSampler:
		// Policy versions: watch the announcement, read the weights.
		p.read(kvStream(state))
		p.read(objStream(t.WeightsBucket()))
	case StageLabeler:
		// Groups still arriving (GroupStore, created by the labeler).
		g := kvStream(t.GroupsBucket())
		p.publish(jsAPI+"STREAM.CREATE."+g, jsAPI+"STREAM.UPDATE."+g)
		p.read(g)
		p.kvWrite(t.GroupsBucket(), ">")
	case StageLearner:
		p.read(kvStream(state))
		for _, key := range []string{lockKey(StageLearner), PolicyVersionKey, StateKeyLearnerStep} {
			p.kvWrite(state, key)
		}
		w := t.WeightsBucket()
		p.read(objStream(w))
		p.publish("$O."+w+".>", jsAPI+"STREAM.PURGE."+objStream(w))
		// The run's owner re-asserts the configuration of every stream.
		for _, s := range streams {
			p.publish(jsAPI + "STREAM.UPDATE." + s)
		}
	}
	return p.done(), nil
}

// done returns the collected lists.
func (p *permSet) done() Permissions {
	return Permissions{Publish: p.pub, Subscribe: p.sub}
}
