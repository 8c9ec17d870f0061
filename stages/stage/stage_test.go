package stage_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		want        stage.Class
		deadLetters bool
	}{
		{"nil", nil, "", false},
		{"plain", errors.New("model busy"), stage.ClassTransient, false},
		{"permanent", fmt.Errorf("bad prompt: %w", stage.ErrPermanent), stage.ClassPermanent, true},
		{"invalid", fmt.Errorf("row 2: %w", schemas.ErrInvalid), stage.ClassInvalid, true},
		{"schema mismatch is invalid", fmt.Errorf("x: %w", schemas.ErrSchemaMismatch), stage.ClassInvalid, true},
		{"unavailable", fmt.Errorf("insert: %w: connection refused", stage.ErrUnavailable), stage.ClassUnavailable, false},
		{"permanent beats unavailable", fmt.Errorf("%w: %w", stage.ErrUnavailable, stage.ErrPermanent), stage.ClassPermanent, true},
		{"invalid beats unavailable", errors.Join(stage.ErrUnavailable, schemas.ErrInvalid), stage.ClassInvalid, true},
		{"invalid beats permanent", fmt.Errorf("%w: %w", stage.ErrPermanent, schemas.ErrInvalid), stage.ClassInvalid, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stage.Classify(tc.err)
			if got != tc.want {
				t.Fatalf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
			}
			if got.DeadLetters() != tc.deadLetters {
				t.Errorf("%q.DeadLetters() = %v, want %v", got, got.DeadLetters(), tc.deadLetters)
			}
		})
	}
}

// TestStagesDoNotImportTransport keeps the stage packages free of the
// transport: a stage imports schemas, model/... and this contract, never
// nats.go, the NATS server or the pipeline package.
func TestStagesDoNotImportTransport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-deps", "-f", "{{.ImportPath}}", "github.com/wsgrpo/wsgrpo/stages/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list listed %d packages; expected the stages' dependencies", len(deps))
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/nats-io/") || d == "github.com/wsgrpo/wsgrpo/pipeline" ||
			strings.HasPrefix(d, "github.com/wsgrpo/wsgrpo/pipeline/") || d == "github.com/wsgrpo/wsgrpo/replay" {
			t.Errorf("a stage package depends on the transport: %s (stages import only schemas, model/... and stages/stage)", d)
		}
	}
}
