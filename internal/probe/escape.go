package probe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxDetail is the most runes an escaped string may have, ellipsis included.
const maxDetail = 200

// escape makes untrusted text safe to print on one line: control characters,
// C1 controls, bidi and line-separator characters and invalid UTF-8 become
// visible escapes (\n, \x1b, \u202e, \xff), the result is cut to maxDetail
// runes with a trailing "…", and text that would start with a GitHub Actions
// workflow command ("::" or "##[", after leading spaces) gets a leading
// backslash.
func escape(s string) string {
	var pieces []string
	total := 0
	for i := 0; i < len(s) && total <= maxDetail; {
		r, size := utf8.DecodeRuneInString(s[i:])
		var p string
		switch {
		case r == utf8.RuneError && size == 1:
			p = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\n':
			p = `\n`
		case r == '\r':
			p = `\r`
		case r == '\t':
			p = `\t`
		case r < 0x20 || r == 0x7f:
			p = fmt.Sprintf(`\x%02x`, r)
		case r >= 0x80 && r <= 0x9f, isInvisibleControl(r):
			p = fmt.Sprintf(`\u%04x`, r)
		default:
			p = s[i : i+size]
		}
		pieces = append(pieces, p)
		total += utf8.RuneCountInString(p)
		i += size
	}
	var b strings.Builder
	if startsWorkflowCommand(pieces) {
		pieces = append([]string{`\`}, pieces...)
		total++
	}
	if total <= maxDetail {
		for _, p := range pieces {
			b.WriteString(p)
		}
		return b.String()
	}
	n := 0
	for _, p := range pieces {
		pn := utf8.RuneCountInString(p)
		if n+pn > maxDetail-1 {
			break
		}
		b.WriteString(p)
		n += pn
	}
	b.WriteString("…")
	return b.String()
}

// isInvisibleControl reports bidi controls and line/paragraph separators,
// which can reorder or break a line on a terminal or in a log viewer.
func isInvisibleControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	case r == '\u2028', r == '\u2029', r == '\ufeff':
		return true
	}
	return false
}

// startsWorkflowCommand reports whether the escaped pieces, joined, begin
// (after whitespace, which the Actions runner trims) with "::" or "##[".
func startsWorkflowCommand(pieces []string) bool {
	t := strings.TrimLeftFunc(strings.Join(pieces, ""), unicode.IsSpace)
	return strings.HasPrefix(t, "::") || strings.HasPrefix(t, "##[")
}
