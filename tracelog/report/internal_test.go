package report

import (
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
)

func TestBucketWidth(t *testing.T) {
	for _, tc := range []struct {
		max  int64
		bins int
		want int64
	}{
		{0, 20, 1}, {19, 20, 1}, {20, 20, 2}, {39, 20, 2}, {40, 20, 5}, {99, 20, 5}, {100, 20, 10},
		{511, 20, 50}, {4095, 10, 500}, {4096, 10, 500}, {4999, 10, 500}, {5000, 10, 1000}, {7, 0, 10}, {-3, 5, 1},
	} {
		t.Run("", func(t *testing.T) {
			got := BucketWidth(tc.max, tc.bins)
			if got != tc.want {
				t.Errorf("BucketWidth(%d, %d) = %d, want %d", tc.max, tc.bins, got, tc.want)
			}
			if b := max(tc.bins, 1); (max(tc.max, 0)+1+got-1)/got > int64(b) {
				t.Errorf("BucketWidth(%d, %d) = %d gives more than %d buckets", tc.max, tc.bins, got, b)
			}
		})
	}
}

func TestSampleIndexes(t *testing.T) {
	for _, tc := range []struct {
		n, k int
		want []int
	}{
		{0, 5, []int{}}, {3, 5, []int{0, 1, 2}}, {10, 4, []int{0, 3, 6, 9}}, {100, 2, []int{0, 99}},
	} {
		t.Run("", func(t *testing.T) {
			if got := sampleIndexes(tc.n, tc.k); !slices.Equal(got, tc.want) {
				t.Errorf("sampleIndexes(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
			}
		})
	}
}

func TestSQLFiles(t *testing.T) {
	for _, name := range QueryNames() {
		t.Run(name, func(t *testing.T) {
			q, err := SQL(name)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(q, "FROM trajectories_dedup") {
				t.Errorf("%s does not read the de-duplicated view", name)
			}
		})
	}
	for _, bad := range []string{"nope", "../report", "sql/summary", ""} {
		if _, err := SQL(bad); err == nil {
			t.Errorf("SQL(%q) succeeded", bad)
		}
	}
}

func TestDownsample(t *testing.T) {
	for _, tc := range []struct{ n, limit, want int }{{10, 500, 10}, {500, 500, 500}, {501, 500, 251}, {15625, 500, 489}, {7, 3, 3}} {
		t.Run("", func(t *testing.T) {
			xys := make(plotter.XYs, tc.n)
			var sumY float64
			for i := range xys {
				xys[i] = plotter.XY{X: float64(i), Y: float64(i * i % 17)}
				sumY += xys[i].Y
			}
			got := downsample(xys, tc.limit)
			if len(got) != tc.want || len(got) > tc.limit {
				t.Fatalf("downsample(%d, %d) has %d points, want %d", tc.n, tc.limit, len(got), tc.want)
			}
			k := (tc.n + tc.limit - 1) / tc.limit
			for i, p := range got {
				lo, hi := i*k, min((i+1)*k, tc.n)
				var y float64
				for _, q := range xys[lo:hi] {
					y += q.Y
				}
				if wantX, wantY := float64(lo+hi-1)/2, y/float64(hi-lo); p.X != wantX || p.Y != wantY {
					t.Errorf("point %d = %v, want (%v, %v)", i, p, wantX, wantY)
				}
			}
		})
	}
}
