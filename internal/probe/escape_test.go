package probe

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"plain text, ünïcødé ok ✓", "plain text, ünïcødé ok ✓"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"a\nb\r\nc\td", `a\nb\r\nc\td`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"c1\u0085\u009b", `c1\u0085\u009b`},
		{"bidi \u202egnp.exe\u202c", `bidi \u202egnp.exe\u202c`},
		{"sep\u2028x", `sep\u2028x`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"::error::pwned", `\::error::pwned`},
		{"  ::warning file=x::y", `\  ::warning file=x::y`},
		{"\u00a0::set-output", "\\\u00a0::set-output"},
		{"##[error]legacy", `\##[error]legacy`},
		{"\n::error::x", `\n::error::x`},
		{"\t::error::x", `\t::error::x`},
		{"a ::error:: in the middle", "a ::error:: in the middle"},
		{":single", ":single"},
		{strings.Repeat("a", 200), strings.Repeat("a", 200)},
		{strings.Repeat("a", 201), strings.Repeat("a", 199) + "…"},
		{strings.Repeat("é", 300), strings.Repeat("é", 199) + "…"},
		// An escape is never cut in half.
		{strings.Repeat("a", 197) + "\x1bxyz", strings.Repeat("a", 197) + "…"},
		{strings.Repeat("a", 195) + "\x1bxyz", strings.Repeat("a", 195) + `\x1b` + "…"},
		{"::" + strings.Repeat("b", 300), `\::` + strings.Repeat("b", 196) + "…"},
	}
	for _, tt := range tests {
		if got := escape(tt.in); got != tt.want {
			t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// checkEscaped fails t unless s is safe to print on one line.
func checkEscaped(t *testing.T, in, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("escape(%q) = %q, not valid UTF-8", in, s)
	}
	if n := utf8.RuneCountInString(s); n > maxDetail {
		t.Errorf("escape(%q) has %d runes, want at most %d", in, n, maxDetail)
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || isInvisibleControl(r) {
			t.Errorf("escape(%q) = %q, contains %U", in, s, r)
		}
	}
	trimmed := strings.TrimLeftFunc(s, unicode.IsSpace)
	if strings.HasPrefix(trimmed, "::") || strings.HasPrefix(trimmed, "##[") {
		t.Errorf("escape(%q) = %q, starts a workflow command", in, s)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "::error::x", " \u00a0##[x", "\x1b[0m", "\xff", strings.Repeat("\n", 300), "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := escape(s)
		checkEscaped(t, s, got)
		// Text that needs no escaping and fits is kept as is.
		if len(s) <= maxDetail && utf8.ValidString(s) && got != s {
			safe := true
			for _, r := range s {
				if r < 0x20 || (r >= 0x7f && r <= 0x9f) || isInvisibleControl(r) {
					safe = false
				}
			}
			if t2 := strings.TrimLeftFunc(s, unicode.IsSpace); strings.HasPrefix(t2, "::") || strings.HasPrefix(t2, "##[") {
				safe = false
			}
			if safe && utf8.RuneCountInString(s) <= maxDetail {
				t.Errorf("escape(%q) = %q, want it unchanged", s, got)
			}
		}
	})
}
