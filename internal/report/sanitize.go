package report

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxLine is how many runes of untrusted text one event line shows.
const MaxLine = 300

// ellipsis ends text that was cut.
const ellipsis = "…"

// Sanitize makes untrusted text safe to print on one line:
//   - leading and trailing white space is trimmed;
//   - each run of line breaks (CR, LF, U+2028, U+2029) becomes one space, a tab
//     becomes a space;
//   - other control characters (C0, DEL, C1), invalid UTF-8 and the Unicode
//     bidirectional overrides are shown escaped, "\x1b" or "\u202e", so no
//     ANSI sequence reaches the terminal;
//   - "##[" (the legacy GitHub workflow command, honoured anywhere in a line)
//     is shown as "#\x23[";
//   - a result that would start with "::" (a GitHub workflow command) starts
//     with "\x3a:" instead;
//   - when maxRunes > 0 and the result is longer, it is cut to maxRunes
//     runes, the last of which is "…"; an escape is never cut in half.
func Sanitize(s string, maxRunes int) string {
	toks := tokens(strings.TrimSpace(s))
	if len(toks) >= 2 && toks[0] == ":" && toks[1] == ":" {
		toks[0] = `\x3a`
	}
	return cutTokens(toks, maxRunes)
}

// sanitize is Sanitize without the "::" guard, for text that never starts a line.
func sanitize(s string, maxRunes int) string {
	return cutTokens(tokens(strings.TrimSpace(s)), maxRunes)
}

// tokens splits s into printable pieces: single runes or whole escapes.
func tokens(s string) []string {
	var toks []string
	lineBreak := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			toks = append(toks, fmt.Sprintf(`\x%02x`, s[i]))
		case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029':
			if !lineBreak {
				toks = append(toks, " ")
			}
			lineBreak = true
			i += size
			continue
		case r == '\t':
			toks = append(toks, " ")
		case r < 0x20 || r == 0x7f:
			toks = append(toks, fmt.Sprintf(`\x%02x`, r))
		case r >= 0x80 && r <= 0x9f, isBidi(r):
			toks = append(toks, fmt.Sprintf(`\u%04x`, r))
		case r == '#' && strings.HasPrefix(s[i+size:], "[") && len(toks) > 0 && toks[len(toks)-1] == "#":
			toks = append(toks, `\x23`)
		default:
			toks = append(toks, s[i:i+size])
		}
		lineBreak = false
		i += size
	}
	return toks
}

// isBidi reports the bidirectional embedding, override and isolate controls,
// which can make displayed text read differently from what it is.
func isBidi(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == '\u200e' || r == '\u200f' || r == '\u061c'
}

// cutTokens joins toks, keeping at most maxRunes runes (maxRunes <= 0: all of them).
func cutTokens(toks []string, maxRunes int) string {
	var b strings.Builder
	total := 0
	for _, t := range toks {
		total += utf8.RuneCountInString(t)
	}
	if maxRunes <= 0 || total <= maxRunes {
		for _, t := range toks {
			b.WriteString(t)
		}
		return b.String()
	}
	n := 0
	for _, t := range toks {
		c := utf8.RuneCountInString(t)
		if n+c > maxRunes-1 {
			break
		}
		b.WriteString(t)
		n += c
	}
	return strings.TrimRight(b.String(), " ") + ellipsis
}

// formatDuration renders d the way the text output shows durations: whole
// milliseconds below a second ("123ms"), tenths of a second above ("1.2s"),
// minutes and seconds from a minute on ("2m05.3s").
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}
	ms := d.Round(time.Millisecond).Milliseconds()
	if ms < 1000 {
		return fmt.Sprintf("%dms", ms)
	}
	d = d.Round(100 * time.Millisecond)
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	m := d / time.Minute
	return fmt.Sprintf("%dm%04.1fs", m, (d - m*time.Minute).Seconds())
}

// formatMS is formatDuration for a count of milliseconds.
func formatMS(ms int64) string { return formatDuration(time.Duration(ms) * time.Millisecond) }
