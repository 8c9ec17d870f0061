package learner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wsgrpo/wsgrpo/model/policy"
)

// Files of a learner checkpoint, a directory Dir/step-NNNNNNNNNNNN written
// under a temporary name and renamed whole.
const (
	policyDir     = "policy"
	optimizerFile = "optimizer.bin"
	stateFile     = "learner.json"
	stepPrefix    = "step-"
	stateFormat   = "wsgrpo-learner"
	stateVersion  = 1
)

// ErrCheckpoint means the learner's checkpoint directory cannot be read or
// written, or belongs to another run (another reference policy).
var ErrCheckpoint = errors.New("learner: checkpoint")

// state is learner.json: what a restarted learner needs besides the
// weights and the optimizer. Rows buffered but not trained are not in it:
// their batches are unacknowledged, and the stream redelivers them.
type state struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	// Step is the number of updates applied; Version the policy version
	// of the saved weights; Published whether that version was published.
	Step      int64 `json:"step"`
	Version   int64 `json:"version"`
	Published bool  `json:"published"`
	// Reference fingerprints the reference policy (sha256 of its
	// weights), so that a resume with another one is refused.
	Reference string `json:"reference"`
	// Consumed is the dedup window, oldest first.
	Consumed []trained `json:"consumed"`
	// Stats are the counters at the checkpoint.
	Skipped     int64            `json:"skipped"`
	RowsTrained int64            `json:"rows_trained"`
	Dropped     map[string]int64 `json:"dropped"`
}

// saved is a loaded checkpoint.
type saved struct {
	state
	weights   policy.Weights
	meta      map[string]string // written with the weights where the format keeps it
	optimizer []byte
}

// fingerprint returns the sha256 of the encoded (checkpoint.WriteSafetensors)
// weights.
func fingerprint(weights []byte) string {
	h := sha256.Sum256(weights)
	return hex.EncodeToString(h[:])
}

// stepDirs returns the step numbers of the complete checkpoints in dir,
// ascending.
func stepDirs(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	var steps []int64
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stepPrefix) {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimPrefix(e.Name(), stepPrefix), 10, 64); err == nil {
			steps = append(steps, n)
		}
	}
	slices.Sort(steps)
	return steps, nil
}

func stepName(step int64) string { return fmt.Sprintf("%s%012d", stepPrefix, step) }

// load returns the newest checkpoint in dir, or nil when there is none;
// its policy must be of m's architecture.
func load(dir string, m policyModel) (*saved, error) {
	steps, err := stepDirs(dir)
	if err != nil || len(steps) == 0 {
		return nil, err
	}
	path := filepath.Join(dir, stepName(steps[len(steps)-1]))
	b, err := os.ReadFile(filepath.Join(path, stateFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	var s saved
	if err := json.Unmarshal(b, &s.state); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCheckpoint, stateFile, err)
	}
	if s.Format != stateFormat || s.FormatVersion != stateVersion {
		return nil, fmt.Errorf("%w: %s is format %q version %d, want %q version %d", ErrCheckpoint, stateFile, s.Format, s.FormatVersion, stateFormat, stateVersion)
	}
	if s.weights, err = m.load(filepath.Join(path, policyDir)); err != nil {
		return nil, err
	}
	if s.optimizer, err = os.ReadFile(filepath.Join(path, optimizerFile)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if s.Dropped == nil {
		s.Dropped = map[string]int64{}
	}
	return &s, nil
}

// save writes a checkpoint of step into dir: everything goes into a
// temporary directory that is renamed to its final name once complete, so
// a crash leaves either the previous checkpoint or this one. Older
// checkpoints beyond keep are removed.
func save(dir string, s *saved, m policyModel, keep int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	final := filepath.Join(dir, stepName(s.Step))
	if _, err := os.Stat(final); err == nil {
		return nil // this step is already durable
	}
	tmp, err := os.MkdirTemp(dir, ".tmp-"+stepName(s.Step)+"-")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	if err := m.save(filepath.Join(tmp, policyDir), s.weights, s.meta); err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	s.Format, s.FormatVersion = stateFormat, stateVersion
	js, err := json.Marshal(s.state)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	for name, data := range map[string][]byte{optimizerFile: s.optimizer, stateFile: js} {
		if err := writeSynced(filepath.Join(tmp, name), data); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	syncDir(dir)
	steps, err := stepDirs(dir)
	if err != nil {
		return err
	}
	for _, old := range steps[:max(len(steps)-keep, 0)] {
		if err := os.RemoveAll(filepath.Join(dir, stepName(old))); err != nil {
			return fmt.Errorf("%w: %w", ErrCheckpoint, err)
		}
	}
	return nil
}

// writeSynced writes data to path and flushes it to disk.
func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return nil
}

// syncDir flushes a directory's entries (the rename) where the system
// allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
