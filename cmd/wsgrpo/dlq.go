package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// Errors of `wsgrpo dlq`. Callers test them with errors.Is; every refusal
// of a redrive also matches ErrRedriveRefused.
var (
	// ErrNoDLQ is returned when the run has no dead-letter stream where
	// the command looked: no embedded NATS store in the run directory, or
	// no such stream on the server.
	ErrNoDLQ = errors.New("no dead-letter stream")
	// ErrDLQEntryNotFound is returned when a --seq names no message of the
	// dead-letter stream (already redriven, or never there).
	ErrDLQEntryNotFound = errors.New("no such dead letter")
	// ErrRedriveRefused is matched by every refusal of `dlq redrive`; when
	// one is returned, nothing was published or removed.
	ErrRedriveRefused = errors.New("redrive refused")
	// ErrRedriveCannotSucceed: the dead letter would only fail the same
	// way again (a payload that does not decode as its stream's schema,
	// rows the stage rejected as invalid, an output too large to
	// publish). --force overrides it.
	ErrRedriveCannotSucceed = fmt.Errorf("%w: it would be dead-lettered again", ErrRedriveRefused)
	// ErrRedriveSharedStream: the dead letter came from a stream whose
	// every consumer sees every message (interest retention, e.g. the
	// labeled stream read by the learner and the logger), so re-publishing
	// it delivers it again to the other consumers as well. --force
	// overrides it.
	ErrRedriveSharedStream = fmt.Errorf("%w: other consumers of its stream would receive it again", ErrRedriveRefused)
	// ErrRedriveNoConsumer: the consumer that dead-lettered the message no
	// longer exists on its interest-retention stream, so a re-published
	// copy would not reach it. --force overrides it.
	ErrRedriveNoConsumer = fmt.Errorf("%w: the failed stage's consumer is gone", ErrRedriveRefused)
	// ErrRedriveOrigin: the dead letter's original stream or subject is not
	// one of the run's, or no longer exists. --force does not override it.
	ErrRedriveOrigin = fmt.Errorf("%w: its original stream cannot take it", ErrRedriveRefused)
	// ErrRedriveIncomplete is returned when a redrive stopped part way (a
	// publish or a removal failed). Every dead letter not reported as
	// redriven is still in the dead-letter stream; running the same
	// command again finishes the work without publishing anything twice
	// within the streams' duplicate window.
	ErrRedriveIncomplete = errors.New("redrive incomplete")
)

// headerRedrive marks a re-published dead letter with the dead-letter
// stream and sequence it came from.
const headerRedrive = "Wsgrpo-Redrive"

// reasonMalformed selects, in --reason, dead-letter messages that are not
// well-formed records.
const reasonMalformed = "malformed"

// dlqFlags are the options of `wsgrpo dlq list` and `wsgrpo dlq redrive`.
type dlqFlags struct {
	Format string
	Stage  string
	Reason string
	Seqs   []uint
	All    bool
	DryRun bool
	Force  bool
}

func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List and redrive a run's dead letters",
		Long: `A stage that gives up on a batch copies it, with why and where from, to the
run's dead-letter stream (WSGRPO_<run>_DLQ) and terminates the original.
Reasons: invalid-payload (it did not decode as its stream's schema),
permanent-error (the stage returned a permanent error, or its output could not
be published at any size) and max-deliveries (it failed on its last allowed
delivery).

  wsgrpo dlq list      show them (read-only)
  wsgrpo dlq redrive   publish selected ones back to the stage that failed

Both read the run's NATS server: --nats URL, or the embedded store in the run
directory (--run ID|DIR). While a run with an embedded server is live, give
the --nats URL it listens on (wsgrpo train --listen).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(newDLQListCmd(), newDLQRedriveCmd())
	return cmd
}

func newDLQListCmd() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "list [--run ID|DIR] [--format table|json] [--stage S] [--reason R]",
		Short: "Show a run's dead letters, one line each (read-only)",
		Long: `Show the dead letters of a run, oldest first, one line each: its sequence in
the dead-letter stream (what redrive --seq takes), when it was dead-lettered,
the stage, the reason, how many times it was delivered, the original
stream:sequence, the payload size and the error.

--format table (default) cuts the error to fit a line; --format json prints
one JSON object per line with the full error, subject and consumer. A message
of the dead-letter stream that is not a well-formed record is listed with
reason "malformed" and the decoding error.

Read-only: no stream, consumer or message is created or removed.`,
		Example: `  wsgrpo dlq list --run grpo-1
  wsgrpo dlq list --nats nats://127.0.0.1:4222 --run grpo-1 --stage verifier --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			return runDLQList(cmd, cfg, log, f)
		},
	}
	addConfigFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&f.Format, "format", formatTable, "output format: table or json (one object per line)")
	fs.StringVar(&f.Stage, "stage", "", "only dead letters of this stage (sampler, verifier, labeler, learner, logger, ...)")
	fs.StringVar(&f.Reason, "reason", "", "only this reason: invalid-payload, permanent-error, max-deliveries or malformed")
	return cmd
}

func newDLQRedriveCmd() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "redrive [--run ID|DIR] (--seq N ... | --all) [--stage S] [--reason R] [--dry-run] [--force]",
		Short: "Publish dead letters back to their original subject, then remove them",
		Long: `Publish each selected dead letter's payload back to the subject it came
from, so that its stage processes it again, and remove it from the dead-letter
stream once the server has stored the copy. Select with --seq N (repeatable,
the SEQ column of wsgrpo dlq list) or --all, narrowed by --stage and --reason.
--dry-run checks and prints what would be done, and changes nothing.

Fix the cause first: a batch redriven into the same failure is dead-lettered
again.

Safe to repeat: the copy's message id derives from the dead-letter stream and
sequence, so if a redrive stops after a publish but before the removal, running
it again within the stream's duplicate window (10 minutes) removes the entry
without publishing twice. A failure part way loses nothing: an entry leaves
the dead-letter stream only after its copy was stored.

Every selected dead letter is checked before anything is published; if one is
refused, nothing is redriven. Refused unless --force:

  * invalid-payload whose bytes still do not decode as the stream's schema,
    and permanent-error where the stage rejected the rows as invalid or the
    output could not be published at any size: the same bytes would fail the
    same way again.
  * a dead letter from a stream with interest retention and other consumers.
    Such a stream keeps every message for each of its durable consumers, so
    a re-published copy reaches all of them, not only the stage that failed.
    With a labeler, the labeled stream is read by the learner and the logger:
    a learner dead letter redriven is logged again by the logger (the new rows
    replace the logged copies), and a logger dead letter redriven is trained
    on a second time by the learner. In a run without a labeler (no_labeler)
    the verified stream is read by the logger and any other sink named in
    VerifiedConsumers. The prompt, rollout and (with a labeler) verified
    streams are work queues: a copy there reaches only the stage that failed.
    Give --force to accept the extra deliveries.
  * a dead letter whose consumer no longer exists on such a stream: the copy
    would not reach the stage that failed.

Refused even with --force: a dead letter whose original stream is not one of
the run's data streams, or no longer exists. Malformed entries (see list) are
skipped with a warning.`,
		Example: `  wsgrpo dlq redrive --run grpo-1 --seq 4 --seq 7
  wsgrpo dlq redrive --run grpo-1 --all --stage verifier --reason permanent-error --dry-run
  wsgrpo dlq redrive --nats nats://127.0.0.1:4222 --run grpo-1 --seq 12 --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd)
			if err != nil {
				return err
			}
			return runDLQRedrive(cmd, cfg, log, f)
		},
	}
	addConfigFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.UintSliceVar(&f.Seqs, "seq", nil, "sequence of a dead letter in the dead-letter stream (repeatable; see wsgrpo dlq list)")
	fs.BoolVar(&f.All, "all", false, "every dead letter (narrowed by --stage and --reason)")
	fs.StringVar(&f.Stage, "stage", "", "only dead letters of this stage")
	fs.StringVar(&f.Reason, "reason", "", "only this reason: invalid-payload, permanent-error or max-deliveries")
	fs.BoolVar(&f.DryRun, "dry-run", false, "check and print what would be redriven; change nothing")
	fs.BoolVar(&f.Force, "force", false, "redrive dead letters that would fail again or reach other consumers of their stream too")
	return cmd
}

// checkFilters validates --stage and --reason.
func (f dlqFlags) checkFilters() error {
	if f.Stage != "" {
		if err := pipeline.ValidateName(f.Stage); err != nil {
			return fmt.Errorf("%w: --stage: %w", ErrConfig, err)
		}
	}
	switch pipeline.Reason(f.Reason) {
	case "", pipeline.ReasonInvalidPayload, pipeline.ReasonPermanentError, pipeline.ReasonMaxDeliveries, reasonMalformed:
		return nil
	}
	return fmt.Errorf("%w: --reason %q (want %s, %s, %s or %s)", ErrConfig, f.Reason,
		pipeline.ReasonInvalidPayload, pipeline.ReasonPermanentError, pipeline.ReasonMaxDeliveries, reasonMalformed)
}

// matches reports whether e passes --stage and --reason. A malformed entry
// matches only --reason malformed, and no --stage.
func (f dlqFlags) matches(e dlqEntry) bool {
	if e.Bad != nil {
		return f.Stage == "" && (f.Reason == "" || f.Reason == reasonMalformed)
	}
	return (f.Stage == "" || e.Letter.Stage == f.Stage) && (f.Reason == "" || string(e.Letter.Reason) == f.Reason)
}

// dlqEntry is one message of the dead-letter stream.
type dlqEntry struct {
	Seq    uint64    // sequence in the dead-letter stream
	Stored time.Time // when the dead-letter stream stored it
	Size   int       // payload bytes
	Letter pipeline.DeadLetter
	Bad    error // not a well-formed dead-letter record (Letter is empty)
}

// time is when the message was dead-lettered, or stored for a malformed one.
func (e dlqEntry) time() time.Time {
	if e.Bad != nil || e.Letter.Time.IsZero() {
		return e.Stored
	}
	return e.Letter.Time
}

func decodeEntry(raw *jetstream.RawStreamMsg) dlqEntry {
	e := dlqEntry{Seq: raw.Sequence, Stored: raw.Time, Size: len(raw.Data)}
	e.Letter, e.Bad = pipeline.DecodeDeadLetter(raw.Header, raw.Data)
	return e
}

// openDLQ connects to the run's NATS server without creating anything (the
// external one at cfg.NATS, or the embedded store of the run directory,
// which must exist) and returns the session and the dead-letter stream.
func openDLQ(ctx context.Context, cfg Config, log *slog.Logger) (*session, jetstream.Stream, error) {
	topo, err := cfg.topology()
	if err != nil {
		return nil, nil, err
	}
	s := &session{topo: topo}
	where := cfg.NATS
	if cfg.NATS == "" {
		store := filepath.Join(cfg.RunDir(), "nats")
		if st, err := os.Stat(store); err != nil || !st.IsDir() {
			return nil, nil, fmt.Errorf("%w: run %q has no embedded NATS store at %s (give --run the run id or its directory, or --nats URL of the server the run uses)",
				ErrNoDLQ, cfg.Run, store)
		}
		where = "the embedded store " + store
		s.srv, err = pipeline.StartServer(pipeline.ServerConfig{StoreDir: store, Logger: log.With("component", "nats-server")})
		if err != nil {
			return nil, nil, fmt.Errorf("start embedded NATS on %s (if the run is live, give --nats URL of its server instead): %w", store, err)
		}
		s.nc, err = s.srv.Connect()
	} else {
		s.nc, err = pipeline.Connect(cfg.NATS)
	}
	if err != nil {
		s.close()
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	if s.js, err = pipeline.NewJetStream(s.nc); err != nil {
		s.close()
		return nil, nil, err
	}
	name := topo.DeadLetterStream()
	dlq, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.close()
		return nil, nil, fmt.Errorf("%w: stream %s of run %q is not on %s (is --run right? a run's streams are created when it starts)",
			ErrNoDLQ, name, cfg.Run, where)
	}
	if err != nil {
		s.close()
		return nil, nil, fmt.Errorf("dead-letter stream %s: %w", name, err)
	}
	return s, dlq, nil
}

// eachEntry calls fn with every message of the dead-letter stream, oldest
// first, reading one at a time.
func eachEntry(ctx context.Context, dlq jetstream.Stream, fn func(dlqEntry) error) error {
	for seq := uint64(1); ; {
		raw, err := dlq.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read dead-letter stream %s from sequence %d: %w", dlq.CachedInfo().Config.Name, seq, err)
		}
		if err := fn(decodeEntry(raw)); err != nil {
			return err
		}
		seq = raw.Sequence + 1
	}
}

// dlqLine is one dead letter in `dlq list --format json`.
type dlqLine struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Stage        string    `json:"stage"`
	Reason       string    `json:"reason"`
	Deliveries   uint64    `json:"deliveries"`
	Stream       string    `json:"stream"`
	Sequence     uint64    `json:"sequence"`
	Subject      string    `json:"subject"`
	Consumer     string    `json:"consumer"`
	PayloadBytes int       `json:"payload_bytes"`
	Error        string    `json:"error"`
}

func (e dlqEntry) line() dlqLine {
	if e.Bad != nil {
		return dlqLine{Seq: e.Seq, Time: e.time().UTC(), Reason: reasonMalformed, PayloadBytes: e.Size, Error: e.Bad.Error()}
	}
	d := e.Letter
	return dlqLine{
		Seq: e.Seq, Time: e.time().UTC(), Stage: d.Stage, Reason: string(d.Reason), Deliveries: d.Deliveries,
		Stream: d.Stream, Sequence: d.Sequence, Subject: d.Subject, Consumer: d.Consumer,
		PayloadBytes: e.Size, Error: d.Error,
	}
}

// maxErrorCell bounds the error column of the table.
const maxErrorCell = 80

func runDLQList(cmd *cobra.Command, cfg Config, log *slog.Logger, f dlqFlags) error {
	if f.Format != formatTable && f.Format != formatJSON {
		return fmt.Errorf("%w: --format %q (want table or json)", ErrConfig, f.Format)
	}
	if err := f.checkFilters(); err != nil {
		return err
	}
	ctx := cmd.Context()
	s, dlq, err := openDLQ(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.close()
	var lines []dlqLine
	if err := eachEntry(ctx, dlq, func(e dlqEntry) error {
		if f.matches(e) {
			lines = append(lines, e.line())
		}
		return nil
	}); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if f.Format == formatJSON {
		enc := json.NewEncoder(w)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	if len(lines) == 0 {
		out(cmd, "no dead letters in run %q%s\n", cfg.Run, f.filterText())
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tSTAGE\tREASON\tDELIVERIES\tSOURCE\tBYTES\tERROR")
	malformed := 0
	for _, l := range lines {
		source, stage, dels := "-", "-", "-"
		if l.Reason == reasonMalformed {
			malformed++
		} else {
			source, stage, dels = l.Stream+":"+strconv.FormatUint(l.Sequence, 10), l.Stage, strconv.FormatUint(l.Deliveries, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.Seq, l.Time.Format(time.RFC3339), stage, l.Reason, dels, source,
			l.PayloadBytes, cell(l.Error, maxErrorCell))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	out(cmd, "%d dead letters in run %q%s", len(lines), cfg.Run, f.filterText())
	if malformed > 0 {
		out(cmd, ", %d malformed (redrive skips them)", malformed)
	}
	out(cmd, "\n")
	return nil
}

// filterText describes --stage and --reason for a summary line.
func (f dlqFlags) filterText() string {
	var parts []string
	if f.Stage != "" {
		parts = append(parts, "stage "+f.Stage)
	}
	if f.Reason != "" {
		parts = append(parts, "reason "+f.Reason)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// cell puts s on one line of at most n runes.
func cell(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// origin is what redrive needs to know about a dead letter's original
// stream.
type origin struct {
	hop       pipeline.Hop
	retention jetstream.RetentionPolicy
	subjects  []string
	consumers []string
	dupWindow time.Duration
	err       error // the stream could not be read
}

// redriver checks and redrives the dead letters of one run.
type redriver struct {
	cmd     *cobra.Command
	s       *session
	dlq     jetstream.Stream
	f       dlqFlags
	hops    map[string]pipeline.Hop // the run's data streams by name, either layout
	origins map[string]*origin
}

// plan is a dead letter that passed the checks.
type plan struct {
	seq    uint64
	letter pipeline.DeadLetter // without the payload
	rows   int64               // rows of the payload, -1 when it does not decode
	origin *origin
}

func runDLQRedrive(cmd *cobra.Command, cfg Config, log *slog.Logger, f dlqFlags) error {
	switch {
	case len(f.Seqs) == 0 && !f.All:
		return fmt.Errorf("%w: say which dead letters to redrive: --seq N (repeatable; the SEQ column of wsgrpo dlq list) or --all", ErrConfig)
	case len(f.Seqs) > 0 && f.All:
		return fmt.Errorf("%w: give --seq or --all, not both", ErrConfig)
	case slices.Contains(f.Seqs, 0):
		return fmt.Errorf("%w: --seq 0: dead-letter sequences start at 1 (see wsgrpo dlq list)", ErrConfig)
	}
	if err := f.checkFilters(); err != nil {
		return err
	}
	ctx := cmd.Context()
	s, dlq, err := openDLQ(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.close()
	r := &redriver{cmd: cmd, s: s, dlq: dlq, f: f, hops: map[string]pipeline.Hop{}, origins: map[string]*origin{}}
	for _, h := range (pipeline.Topology{Run: cfg.Run}).Hops() {
		r.hops[h.Stream] = h
	}

	// Check every selected dead letter before anything is published.
	var (
		plans    []plan
		refused  []error
		missing  []string
		selected int
	)
	consider := func(e dlqEntry, explicit bool) error {
		if e.Bad != nil {
			if explicit || f.matches(e) {
				r.warn("skipping dead letter %d: %v (it stays in %s; inspect it with `nats stream get %s %d`)",
					e.Seq, e.Bad, dlq.CachedInfo().Config.Name, dlq.CachedInfo().Config.Name, e.Seq)
			}
			return nil
		}
		if !f.matches(e) {
			if explicit {
				r.warn("skipping dead letter %d: stage %s, reason %s does not match%s", e.Seq, e.Letter.Stage, e.Letter.Reason, f.filterText())
			}
			return nil
		}
		selected++
		p, err := r.check(ctx, e)
		if err != nil {
			refused = append(refused, err)
			return nil
		}
		plans = append(plans, p)
		return nil
	}
	if f.All {
		err = eachEntry(ctx, dlq, func(e dlqEntry) error { return consider(e, false) })
	} else {
		seqs := slices.Clone(f.Seqs)
		slices.Sort(seqs)
		for _, seq := range slices.Compact(seqs) {
			raw, gerr := dlq.GetMsg(ctx, uint64(seq))
			if errors.Is(gerr, jetstream.ErrMsgNotFound) {
				missing = append(missing, strconv.FormatUint(uint64(seq), 10))
				continue
			}
			if gerr != nil {
				err = fmt.Errorf("read dead letter %d: %w", seq, gerr)
				break
			}
			if err = consider(decodeEntry(raw), true); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return fmt.Errorf("nothing was redriven: %d of %d selected dead letters refused; fix the cause, narrow the selection (--seq, --stage, --reason) or, where it says so, give --force:\n%w",
			len(refused), selected, errors.Join(refused...))
	}
	var notFound error
	if len(missing) > 0 {
		notFound = fmt.Errorf("%w: %s not in %s (already redriven or removed; see wsgrpo dlq list)",
			ErrDLQEntryNotFound, strings.Join(missing, ", "), dlq.CachedInfo().Config.Name)
	}
	if f.DryRun {
		for _, p := range plans {
			out(cmd, "would redrive dead letter %d (%s, %s, %s) to %s (stream %s)\n", p.seq, p.letter.Stage, p.letter.Reason, p.rowsText(), p.letter.Subject, p.letter.Stream)
		}
		out(cmd, "dry run: %d dead letters of run %q would be redriven; nothing was changed\n", len(plans), cfg.Run)
		return notFound
	}
	done, dups := 0, 0
	for _, p := range plans {
		dup, err := r.redrive(ctx, p)
		if err != nil {
			return fmt.Errorf("%w after %d of %d dead letters: %w", ErrRedriveIncomplete, done, len(plans), err)
		}
		done++
		if dup {
			dups++
		}
	}
	out(cmd, "redrove %d dead letters of run %q", done, cfg.Run)
	if dups > 0 {
		out(cmd, " (%d had been published by an earlier redrive and were only removed)", dups)
	}
	out(cmd, "\n")
	return notFound
}

func (p plan) rowsText() string {
	if p.rows < 0 {
		return "payload does not decode"
	}
	return strconv.FormatInt(p.rows, 10) + " rows"
}

// warn prints a warning on standard error.
func (r *redriver) warn(format string, args ...any) {
	fmt.Fprintf(r.cmd.ErrOrStderr(), "warning: "+format+"\n", args...)
}

// origin returns what is known about a data stream of the run, read once.
func (r *redriver) origin(ctx context.Context, name string) *origin {
	if o, ok := r.origins[name]; ok {
		return o
	}
	o := &origin{hop: r.hops[name]}
	r.origins[name] = o
	st, err := r.s.js.Stream(ctx, name)
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

// check decides whether e may be redriven. Refusals --force overrides
// become warnings when it is given.
func (r *redriver) check(ctx context.Context, e dlqEntry) (plan, error) {
	d := e.Letter
	p := plan{seq: e.Seq, letter: d, rows: -1}
	p.letter.Payload = nil
	what := fmt.Sprintf("dead letter %d (stage %s, %s, from %s:%d)", e.Seq, d.Stage, d.Reason, d.Stream, d.Sequence)
	hop, ok := r.hops[d.Stream]
	if !ok {
		return p, fmt.Errorf("%w: %s: %s is not a data stream of run %s; --force does not help", ErrRedriveOrigin, what, d.Stream, r.s.topo.Run)
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
		p.rows = rec.NumRows()
		rec.Release()
	}
	switch {
	case decodeErr != nil:
		forceable = append(forceable, fmt.Errorf("%w: %s: its payload does not decode as a %s batch (%v), so the %s stage would dead-letter the same bytes again as invalid-payload; it cannot be fixed by redriving (give --force only if the stage reads it differently now)",
			ErrRedriveCannotSucceed, what, hop.Kind, decodeErr, d.Stage))
	case d.Reason == pipeline.ReasonPermanentError && strings.Contains(d.Error, schemas.ErrInvalid.Error()):
		forceable = append(forceable, fmt.Errorf("%w: %s: the stage rejected its rows as invalid (%s), and would reject the same rows again; give --force once the stage accepts them",
			ErrRedriveCannotSucceed, what, cell(d.Error, 200)))
	case d.Reason == pipeline.ReasonPermanentError && strings.Contains(d.Error, pipeline.ErrBatchTooLarge.Error()):
		forceable = append(forceable, fmt.Errorf("%w: %s: the stage's output for it could not be published at any size (%s); give --force once the stage's output fits",
			ErrRedriveCannotSucceed, what, cell(d.Error, 200)))
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
	if !r.f.Force {
		return p, errors.Join(forceable...)
	}
	for _, err := range forceable {
		r.warn("--force: redriving anyway: %v", err)
	}
	return p, nil
}

// effects says what a second delivery means to the standard sinks.
func effects(consumers []string) string {
	var parts []string
	if slices.Contains(consumers, pipeline.StageLearner) {
		parts = append(parts, "the learner would train on it a second time")
	}
	if slices.Contains(consumers, pipeline.StageLogger) {
		parts = append(parts, "the logger would log its rows again (replacing the logged copies)")
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", and ")
}

// retentionName is the retention policy as the help text names it.
func retentionName(p jetstream.RetentionPolicy) string {
	return strings.ToLower(p.String())
}

// redrive publishes one dead letter back to its subject and, once the copy
// is stored, removes it from the dead-letter stream. dup reports that an
// earlier redrive had already published it.
func (r *redriver) redrive(ctx context.Context, p plan) (dup bool, err error) {
	dlqName := r.dlq.CachedInfo().Config.Name
	raw, err := r.dlq.GetMsg(ctx, p.seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		out(r.cmd, "dead letter %d: already gone from %s (redriven or removed meanwhile)\n", p.seq, dlqName)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read dead letter %d: %w", p.seq, err)
	}
	d, err := pipeline.DecodeDeadLetter(raw.Header, raw.Data)
	if err != nil {
		return false, fmt.Errorf("dead letter %d: %w", p.seq, err)
	}
	id := dlqName + ":" + strconv.FormatUint(p.seq, 10)
	m := nats.NewMsg(d.Subject)
	m.Data = d.Payload
	m.Header.Set(jetstream.MsgIDHeader, "redrive:"+id)
	m.Header.Set(pipeline.HeaderKind, string(p.origin.hop.Kind))
	if p.rows >= 0 {
		m.Header.Set(pipeline.HeaderRows, strconv.FormatInt(p.rows, 10))
	}
	m.Header.Set(pipeline.HeaderSource, d.Stream+":"+strconv.FormatUint(d.Sequence, 10))
	m.Header.Set(headerRedrive, id)
	ack, err := r.s.js.PublishMsg(ctx, m, jetstream.WithExpectStream(d.Stream))
	if err != nil {
		return false, fmt.Errorf("publish dead letter %d to %s: %w; it is still in %s: run the same command again", p.seq, d.Subject, err, dlqName)
	}
	if err := r.dlq.DeleteMsg(ctx, p.seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		window := p.origin.dupWindow
		if window <= 0 {
			window = pipeline.DefaultDuplicateWindow
		}
		return false, fmt.Errorf("dead letter %d was published to %s (stream %s sequence %d) but could not be removed from %s: %w; it is still there: run the same command again within %s (the duplicate window of %s) to remove it without publishing it twice",
			p.seq, d.Subject, d.Stream, ack.Sequence, dlqName, err, window, d.Stream)
	}
	note := ""
	if ack.Duplicate {
		note = "; it had been published by an earlier redrive, now only removed"
	}
	out(r.cmd, "redriven dead letter %d (%s, %s, %s) to %s (stream %s sequence %d)%s\n",
		p.seq, d.Stage, d.Reason, p.rowsText(), d.Subject, d.Stream, ack.Sequence, note)
	return ack.Duplicate, nil
}
