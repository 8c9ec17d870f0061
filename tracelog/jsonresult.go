package tracelog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// jsonFormat is the output format the embedded backend asks for: names,
// then types, then one JSON array per row.
const jsonFormat = "JSONCompactEachRowWithNamesAndTypes"

// errResultFormat wraps a result the engine wrote that cannot be read.
var errResultFormat = errors.New("unreadable result")

// decodeJSONResult reads a JSONCompactEachRowWithNamesAndTypes result and
// maps each value to the Go type Result documents for its column type.
// Empty output (a statement that returns nothing) is an empty Result.
func decodeJSONResult(data []byte) (*Result, error) {
	res := &Result{}
	if len(bytes.TrimSpace(data)) == 0 {
		return res, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&res.Columns); err != nil {
		return nil, fmt.Errorf("%w: column names: %v", errResultFormat, err)
	}
	if err := dec.Decode(&res.Types); err != nil {
		return nil, fmt.Errorf("%w: column types: %v", errResultFormat, err)
	}
	if len(res.Types) != len(res.Columns) {
		return nil, fmt.Errorf("%w: %d names, %d types", errResultFormat, len(res.Columns), len(res.Types))
	}
	for {
		var raw []any
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", errResultFormat, len(res.Rows), err)
		}
		if len(raw) != len(res.Columns) {
			return nil, fmt.Errorf("%w: row %d has %d values, want %d", errResultFormat, len(res.Rows), len(raw), len(res.Columns))
		}
		row := make([]any, len(raw))
		for j, v := range raw {
			if row[j], err = jsonValue(v, res.Types[j], 0); err != nil {
				return nil, fmt.Errorf("%w: row %d column %s: %v", errResultFormat, len(res.Rows), res.Columns[j], err)
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// maxTypeDepth bounds nested Array types.
const maxTypeDepth = 32

// jsonValue converts one decoded JSON value of ClickHouse type typ.
func jsonValue(v any, typ string, depth int) (any, error) {
	if depth > maxTypeDepth {
		return nil, fmt.Errorf("type nested too deep")
	}
	k, nullable, elem := parseType(typ)
	if v == nil {
		if nullable {
			return nil, nil
		}
		return nil, fmt.Errorf("null in non-Nullable %s", typ)
	}
	text := func() (string, error) {
		switch x := v.(type) {
		case json.Number:
			return x.String(), nil
		case string:
			return x, nil
		}
		return "", fmt.Errorf("%T for %s", v, typ)
	}
	switch k {
	case kindInt:
		s, err := text()
		if err != nil {
			return nil, err
		}
		return strconv.ParseInt(s, 10, 64)
	case kindUint:
		s, err := text()
		if err != nil {
			return nil, err
		}
		return strconv.ParseUint(s, 10, 64)
	case kindFloat:
		s, err := text()
		if err != nil {
			return nil, err
		}
		return parseFloatText(s)
	case kindTime:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%T for %s", v, typ)
		}
		return parseTimeText(s)
	case kindArray:
		xs, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%T for %s", v, typ)
		}
		out := make([]any, len(xs))
		for i, x := range xs {
			var err error
			if out[i], err = jsonValue(x, elem, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}
