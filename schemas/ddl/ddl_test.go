package ddl

import (
	"errors"
	"strings"
	"testing"
)

func TestMigrationsEmbedded(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 3 {
		t.Fatalf("got %d migrations", len(ms))
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d: versions must run 1, 2, 3, ...", i, m.Version)
		}
		for _, s := range m.Statements {
			if strings.HasSuffix(s, ";") || strings.TrimSpace(s) != s || s == "" {
				t.Errorf("migration %d statement %q not trimmed", m.Version, s)
			}
			// Features ClickHouse 18.16 lacks must not appear.
			for _, bad := range []string{"LowCardinality", "DateTime64", "Map(", "Bool", "CODEC", "ADD COLUMN IF NOT EXISTS"} {
				if strings.Contains(s, bad) {
					t.Errorf("migration %d uses %q, which ClickHouse 18.16 lacks", m.Version, bad)
				}
			}
		}
	}
	if !strings.Contains(ms[0].Statements[0], "ReplacingMergeTree(inserted)") {
		t.Errorf("first migration does not create the ReplacingMergeTree table")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		file, text string
		want       []string
		err        bool
	}{
		{"0001_a.sql", "-- c\nSELECT 1;\n\nSELECT\n  2;\n", []string{"SELECT 1", "SELECT\n  2"}, false},
		{"0002_b.sql", "SELECT 1", nil, true},
		{"0003_c.sql", "-- only a comment\n", nil, true},
		{"x_a.sql", "SELECT 1;", nil, true},
		{"0004.sql", "SELECT 1;", nil, true},
		{"0000_a.sql", "SELECT 1;", nil, true},
		{"0005_a.txt", "SELECT 1;", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := Parse(tc.file, tc.text)
			if tc.err {
				if !errors.Is(err, ErrMigration) {
					t.Fatalf("err = %v, want ErrMigration", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(m.Statements, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("statements = %q, want %q", m.Statements, tc.want)
			}
		})
	}
}
