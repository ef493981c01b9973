package probe_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/runrollback/runrollback/internal/probe"
)

// answers turns "GGB.G" into evidence: G good, B bad, . no evidence.
func answers(s string) []probe.Evidence {
	var out []probe.Evidence
	for _, c := range s {
		switch c {
		case 'G':
			out = append(out, probe.Good)
		case 'B':
			out = append(out, probe.Bad)
		default:
			out = append(out, probe.NoEvidence)
		}
	}
	return out
}

// decide feeds seq to a fresh detector and returns the decisions after each
// answer, as a string of u (undecided), h (healthy), b (broken).
func decide(r probe.Rule, seq string) string {
	d := probe.NewDetector(r)
	var sb strings.Builder
	for _, e := range answers(seq) {
		sb.WriteByte("uhb"[d.Add(e)])
	}
	return sb.String()
}

func TestDetectorDecisions(t *testing.T) {
	def := probe.Rule{}
	for _, tt := range []struct {
		name string
		rule probe.Rule
		seq  string
		want string
	}{
		{"defaults: ten good answers are healthy", def, "GGGGGGGGGG", "uuuuuuuuuh"},
		{"defaults: two failing answers are broken at once", def, "BB", "ub"},
		{"defaults: one failure among eleven is still healthy", def, "GBGGGGGGGGG", "uuuuuuuuuuh"},
		{"defaults: two failures among eleven are broken", def, "GBGGGGGGGGB", "uuuuuuuuuub"},
		{"no evidence changes nothing", def, "..B..B", "uuuuub"},
		{"a half-failing pattern is broken on its second failure", def, "GBGB", "uuub"},
		{"the window slides: old failures drop out", probe.Rule{Successes: 2, Failures: 2}, "BGGGB", "uuhhh"},
		{"sliding: two failures within three answers", probe.Rule{Successes: 2, Failures: 2}, "GGBGB", "uhhhb"},
		{"successes 1 failures 1: the first answer decides", probe.Rule{Successes: 1, Failures: 1}, "B", "b"},
		{"successes 1 failures 1: good", probe.Rule{Successes: 1, Failures: 1}, "G", "h"},
		{"failures 3 in a row", probe.Rule{Successes: 3, Failures: 3}, "BBB", "uub"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.rule, tt.seq); got != tt.want {
				t.Errorf("decisions over %s = %s, want %s", tt.seq, got, tt.want)
			}
		})
	}
}

func TestDetectorCounts(t *testing.T) {
	d := probe.NewDetector(probe.Rule{Successes: 3, Failures: 2}) // window 4
	for _, e := range answers("BGGGGG") {
		d.Add(e)
	}
	if g, b := d.Counts(); g != 4 || b != 0 {
		t.Errorf("Counts() = %d good, %d bad; want 4, 0 (the failure slid out of the window of 4)", g, b)
	}
}

// TestRuleWindow: the window is just long enough that a full one is decided.
func TestRuleWindow(t *testing.T) {
	for k := 1; k <= 6; k++ {
		for m := 1; m <= 4; m++ {
			r := probe.Rule{Successes: k, Failures: m}
			n := r.Window()
			if n != k+m-1 {
				t.Fatalf("%+v.Window() = %d, want %d", r, n, k+m-1)
			}
			// Every sequence of n answers reaches a decision by its end.
			for bits := range 1 << n {
				var sb strings.Builder
				for i := range n {
					sb.WriteByte("GB"[bits>>i&1])
				}
				if got := decide(r, sb.String()); got[len(got)-1] == 'u' {
					t.Fatalf("%+v: %s is undecided after the whole window", r, sb.String())
				}
			}
		}
	}
}

// TestPassProbabilityExact checks the closed form against every sequence the
// detector can see from the start, each weighted by its probability, until
// its first decision.
func TestPassProbabilityExact(t *testing.T) {
	for _, r := range []probe.Rule{{}, {Successes: 2, Failures: 3}, {Successes: 3, Failures: 1}, {Successes: 5, Failures: 2}} {
		for _, p := range []float64{0, 0.01, 0.2, 0.5, 0.9, 1} {
			var walk func(seq string, prob float64) float64
			walk = func(seq string, prob float64) float64 {
				if prob == 0 {
					return 0
				}
				dd := probe.NewDetector(r)
				var last probe.Decision
				for _, e := range answers(seq) {
					last = dd.Add(e)
				}
				switch last {
				case probe.JudgedHealthy:
					return prob
				case probe.JudgedBroken:
					return 0
				}
				return walk(seq+"G", prob*(1-p)) + walk(seq+"B", prob*p)
			}
			want := walk("", 1)
			if got := r.PassProbability(p); math.Abs(got-want) > 1e-12 {
				t.Errorf("%+v.PassProbability(%g) = %.15f, enumeration says %.15f", r, p, got, want)
			}
		}
	}
}

// TestDefaultRuleErrorRates: the default rule catches a half-failing target
// with at least 99% probability and passes a healthy one, and one that fails
// 1% of its answers, with at least 99%.
func TestDefaultRuleErrorRates(t *testing.T) {
	r := probe.Rule{}
	if miss := r.PassProbability(0.5); miss > 0.01 {
		t.Errorf("a half-failing target passes with probability %.4f, want at most 0.01", miss)
	}
	if alarm := 1 - r.PassProbability(0.01); alarm > 0.01 {
		t.Errorf("a target failing 1%% of answers is flagged with probability %.4f, want at most 0.01", alarm)
	}
	if r.PassProbability(0) != 1 || r.PassProbability(1) != 0 {
		t.Errorf("PassProbability(0), (1) = %g, %g, want 1, 0", r.PassProbability(0), r.PassProbability(1))
	}
	// The figures the package documentation states.
	if got := fmtPct(r.PassProbability(0.5)); got != "0.59%" {
		t.Errorf("miss rate at 50%% = %s, documented 0.59%%", got)
	}
	if got := fmtPct(1 - r.PassProbability(0.01)); got != "0.52%" {
		t.Errorf("false-alarm rate at 1%% = %s, documented 0.52%%", got)
	}
}

func fmtPct(p float64) string { return fmt.Sprintf("%.2f%%", 100*p) }
