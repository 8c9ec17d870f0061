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

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

// Errors of `wsgrpo dlq`. Callers test them with errors.Is. The refusals
// of a redrive are pipeline's (pipeline.ErrRedriveRefused and the errors
// that wrap it), as is pipeline.ErrRedriveIncomplete.
var (
	// ErrNoDLQ is returned when the run has no dead-letter stream where
	// the command looked: no embedded NATS store in the run directory, or
	// no such stream on the server.
	ErrNoDLQ = errors.New("no dead-letter stream")
	// ErrDLQEntryNotFound is returned when a --seq names no message of the
	// dead-letter stream (already redriven, or never there).
	ErrDLQEntryNotFound = errors.New("no such dead letter")
)

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
the stage, the reason, the error's class, how many times it was delivered,
the original stream:sequence, the payload size and the error. The class is
what the runner made of the stage's error: invalid (the rows break the
schema's rules), permanent, unavailable, transient, or too-large (the
output could not be published at any size); "-" for a record written before
dead letters carried it.

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
func (f dlqFlags) matches(e pipeline.DeadLetterEntry) bool {
	if e.Bad != nil {
		return f.Stage == "" && (f.Reason == "" || f.Reason == reasonMalformed)
	}
	return (f.Stage == "" || e.Letter.Stage == f.Stage) && (f.Reason == "" || string(e.Letter.Reason) == f.Reason)
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
		if s.release, err = holdRunDir(cfg.RunDir(), useNATS); err != nil {
			return nil, nil, err
		}
		s.srv, err = pipeline.StartServer(pipeline.ServerConfig{StoreDir: store, Logger: log.With("component", "nats-server")})
		if err != nil {
			s.close()
			return nil, nil, fmt.Errorf("start embedded NATS on %s (if the run is live, give --nats URL of its server instead): %w", store, err)
		}
		s.nc, err = s.srv.Connect()
	} else {
		s.nc, err = connectExternal(cfg, log, "")
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

// dlqLine is one dead letter in `dlq list --format json`.
type dlqLine struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Stage        string    `json:"stage"`
	Reason       string    `json:"reason"`
	Class        string    `json:"class,omitempty"`
	Deliveries   uint64    `json:"deliveries"`
	Stream       string    `json:"stream"`
	Sequence     uint64    `json:"sequence"`
	Subject      string    `json:"subject"`
	Consumer     string    `json:"consumer"`
	PayloadBytes int       `json:"payload_bytes"`
	Error        string    `json:"error"`
}

func lineOf(e pipeline.DeadLetterEntry) dlqLine {
	if e.Bad != nil {
		return dlqLine{Seq: e.Seq, Time: e.Time().UTC(), Reason: reasonMalformed, PayloadBytes: e.Size, Error: e.Bad.Error()}
	}
	d := e.Letter
	return dlqLine{
		Seq: e.Seq, Time: e.Time().UTC(), Stage: d.Stage, Reason: string(d.Reason), Class: string(d.Class), Deliveries: d.Deliveries,
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
	if err := pipeline.ScanDeadLetters(ctx, dlq, func(e pipeline.DeadLetterEntry) error {
		if f.matches(e) {
			lines = append(lines, lineOf(e))
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
	fmt.Fprintln(tw, "SEQ\tTIME\tSTAGE\tREASON\tCLASS\tDELIVERIES\tSOURCE\tBYTES\tERROR")
	malformed := 0
	for _, l := range lines {
		source, stage, class, dels := "-", "-", "-", "-"
		if l.Reason == reasonMalformed {
			malformed++
		} else {
			source, stage, dels = l.Stream+":"+strconv.FormatUint(l.Sequence, 10), l.Stage, strconv.FormatUint(l.Deliveries, 10)
			if l.Class != "" {
				class = l.Class
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.Seq, l.Time.Format(time.RFC3339), stage, l.Reason, class, dels, source,
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
	dlqName := dlq.CachedInfo().Config.Name
	rd := pipeline.NewRedriver(s.js, dlq, s.topo)
	warn := func(format string, args ...any) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: "+format+"\n", args...)
	}

	// Check every selected dead letter before anything is published.
	var (
		plans    []pipeline.RedrivePlan
		refused  []error
		missing  []string
		selected int
	)
	consider := func(e pipeline.DeadLetterEntry, explicit bool) error {
		if e.Bad != nil {
			if explicit || f.matches(e) {
				warn("skipping dead letter %d: %v (it stays in %s; inspect it with `nats stream get %s %d`)",
					e.Seq, e.Bad, dlqName, dlqName, e.Seq)
			}
			return nil
		}
		if !f.matches(e) {
			if explicit {
				warn("skipping dead letter %d: stage %s, reason %s does not match%s", e.Seq, e.Letter.Stage, e.Letter.Reason, f.filterText())
			}
			return nil
		}
		selected++
		p, err := rd.Check(ctx, e, f.Force)
		if err != nil {
			refused = append(refused, err)
			return nil
		}
		for _, w := range p.Forced {
			warn("--force: redriving anyway: %v", w)
		}
		plans = append(plans, p)
		return nil
	}
	if f.All {
		err = pipeline.ScanDeadLetters(ctx, dlq, func(e pipeline.DeadLetterEntry) error { return consider(e, false) })
	} else {
		seqs := slices.Clone(f.Seqs)
		slices.Sort(seqs)
		for _, seq := range slices.Compact(seqs) {
			e, gerr := pipeline.GetDeadLetter(ctx, dlq, uint64(seq))
			if errors.Is(gerr, jetstream.ErrMsgNotFound) {
				missing = append(missing, strconv.FormatUint(uint64(seq), 10))
				continue
			}
			if gerr != nil {
				err = gerr
				break
			}
			if err = consider(e, true); err != nil {
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
			ErrDLQEntryNotFound, strings.Join(missing, ", "), dlqName)
	}
	if f.DryRun {
		for _, p := range plans {
			out(cmd, "would redrive dead letter %d (%s, %s, %s) to %s (stream %s)\n", p.Seq, p.Letter.Stage, p.Letter.Reason, p.RowsText(), p.Letter.Subject, p.Letter.Stream)
		}
		out(cmd, "dry run: %d dead letters of run %q would be redriven; nothing was changed\n", len(plans), cfg.Run)
		return notFound
	}
	done, dups := 0, 0
	for _, p := range plans {
		res, err := rd.Redrive(ctx, p)
		if err != nil {
			return fmt.Errorf("after %d of %d dead letters: %w", done, len(plans), err)
		}
		done++
		d := res.Letter
		switch {
		case res.Gone:
			out(cmd, "dead letter %d: already gone from %s (redriven or removed meanwhile)\n", p.Seq, dlqName)
			continue
		case res.Duplicate:
			dups++
			out(cmd, "redriven dead letter %d (%s, %s, %s) to %s (stream %s sequence %d); it had been published by an earlier redrive, now only removed\n",
				p.Seq, d.Stage, d.Reason, p.RowsText(), d.Subject, d.Stream, res.Sequence)
		default:
			out(cmd, "redriven dead letter %d (%s, %s, %s) to %s (stream %s sequence %d)\n",
				p.Seq, d.Stage, d.Reason, p.RowsText(), d.Subject, d.Stream, res.Sequence)
		}
	}
	out(cmd, "redrove %d dead letters of run %q", done, cfg.Run)
	if dups > 0 {
		out(cmd, " (%d had been published by an earlier redrive and were only removed)", dups)
	}
	out(cmd, "\n")
	return notFound
}
