package tracelog

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Result is the output of Query. Both backends return the same Go types for
// the same ClickHouse types:
//
//	Int8..Int64          int64
//	UInt8..UInt64        uint64
//	Float32, Float64     float64
//	String, FixedString,
//	Enum, UUID, others   string
//	Date, DateTime       time.Time (UTC)
//	Array(T)             []any of T's Go type
//	Nullable(T)          nil or T's Go type
type Result struct {
	Columns []string // column names
	Types   []string // ClickHouse type of each column
	Rows    [][]any
}

// Cell formats the value at row i, column j as text: numbers in their
// shortest form, times as "2006-01-02 15:04:05", arrays as [a,b], NULL as
// "NULL".
func (r *Result) Cell(i, j int) string { return FormatValue(r.Rows[i][j]) }

// FormatValue formats one Result value as Cell does.
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return x.UTC().Format(time.DateTime)
	case []any:
		var b strings.Builder
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if s, ok := e.(string); ok {
				b.WriteString(strconv.Quote(s))
			} else {
				b.WriteString(FormatValue(e))
			}
		}
		b.WriteByte(']')
		return b.String()
	default:
		return fmt.Sprint(x)
	}
}

// typeKind is the Go representation a ClickHouse type maps to.
type typeKind int

const (
	kindString typeKind = iota
	kindInt
	kindUint
	kindFloat
	kindTime
	kindArray
)

// parseType classifies a ClickHouse type name: its kind, whether it is
// Nullable, and for an array the element type name.
func parseType(t string) (k typeKind, nullable bool, elem string) {
	t = strings.TrimSpace(t)
	for {
		switch {
		case strings.HasPrefix(t, "LowCardinality(") && strings.HasSuffix(t, ")"):
			t = t[len("LowCardinality(") : len(t)-1]
			continue
		case strings.HasPrefix(t, "Nullable(") && strings.HasSuffix(t, ")"):
			t = t[len("Nullable(") : len(t)-1]
			nullable = true
			continue
		}
		break
	}
	switch {
	case strings.HasPrefix(t, "Array(") && strings.HasSuffix(t, ")"):
		return kindArray, nullable, t[len("Array(") : len(t)-1]
	case strings.HasPrefix(t, "UInt"):
		return kindUint, nullable, ""
	case strings.HasPrefix(t, "Int"):
		return kindInt, nullable, ""
	case strings.HasPrefix(t, "Float"):
		return kindFloat, nullable, ""
	case t == "Date" || t == "Date32" || strings.HasPrefix(t, "DateTime"):
		return kindTime, nullable, ""
	}
	return kindString, nullable, ""
}

// parseFloatText reads a float as ClickHouse writes it in text formats.
func parseFloatText(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "nan", "+nan", "-nan":
		return math.NaN(), nil
	case "inf", "+inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}

// parseTimeText reads a Date or DateTime as ClickHouse writes it in text
// formats (in UTC: both backends run their sessions in UTC).
func parseTimeText(s string) (time.Time, error) {
	for _, layout := range []string{time.DateTime, time.DateOnly, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a date or time: %q", s)
}
