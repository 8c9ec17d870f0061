package tracelog

import (
	"strings"
	"unicode"
)

// noResultKeywords are the leading keywords of statements that return no
// result set. The native protocol answers them with end-of-stream and no
// header block, which the driver's Query reports as a bare io.EOF (and
// then drops the connection); the server store runs them with Exec.
var noResultKeywords = map[string]bool{
	"ALTER": true, "ATTACH": true, "CREATE": true, "DETACH": true, "DROP": true,
	"GRANT": true, "KILL": true, "OPTIMIZE": true, "RENAME": true, "REVOKE": true,
	"SET": true, "SYSTEM": true, "TRUNCATE": true, "USE": true,
}

// returnsNoResult reports whether statement q starts with one of
// noResultKeywords, after white space and SQL comments.
func returnsNoResult(q string) bool {
	return noResultKeywords[strings.ToUpper(leadingWord(q))]
}

// leadingWord returns the first word of q, skipping white space, `--` and
// `#` line comments and `/* */` block comments; "" when q has none.
func leadingWord(q string) string {
	for {
		q = strings.TrimLeftFunc(q, unicode.IsSpace)
		switch {
		case strings.HasPrefix(q, "--"), strings.HasPrefix(q, "#"):
			i := strings.IndexByte(q, '\n')
			if i < 0 {
				return ""
			}
			q = q[i+1:]
		case strings.HasPrefix(q, "/*"):
			i := strings.Index(q[2:], "*/")
			if i < 0 {
				return ""
			}
			q = q[2+i+2:]
		default:
			end := strings.IndexFunc(q, func(r rune) bool {
				return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
			})
			if end < 0 {
				return q
			}
			return q[:end]
		}
	}
}
