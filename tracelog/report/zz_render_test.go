package report_test

import (
	"os"
	"testing"

	"github.com/wsgrpo/wsgrpo/tracelog/chtest"
	"github.com/wsgrpo/wsgrpo/tracelog/report"
)

func TestZZRender(t *testing.T) {
	b := chtest.Backends()[1]
	s := openStore(t, b, true)
	a := report.SyntheticRows("grpo", 0, 6400, 6400, 512, 1)
	c := report.SyntheticRows("ws-grpo", 0, 6400, 6400, 384, 2)
	insert(t, s, a)
	insert(t, s, c)
	ra, _ := report.Build(ctx(t), s, "grpo", report.Options{})
	rc, _ := report.Build(ctx(t), s, "ws-grpo", report.Options{})
	if _, err := report.NewDocument(ra, rc).Write(os.Getenv("OUTDIR")); err != nil {
		t.Fatal(err)
	}
}
