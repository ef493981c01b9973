package rollback

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Break modes of the drill (docs/drill.md, "Break modes").
const (
	BreakHealth   = "health"
	BreakVersion  = "version"
	BreakSlow     = "slow"
	BreakFlaky    = "flaky"
	BreakStartup  = "startup"
	BreakSimulate = "simulate"
)

// BreakEnvVar is the switch a drill-aware app honours.
const BreakEnvVar = "RUNROLLBACK_BREAK"

// Break is how the drill breaks its revision.
type Break struct {
	// Mode is one of the Break* constants.
	Mode string
	// Spec is the mode as given, with its argument ("slow:2s", "flaky:50").
	Spec string
	// Env is injected into the broken revision; default RUNROLLBACK_BREAK=<spec>.
	Env map[string]string
	// Image, when set, is deployed as the broken revision instead.
	Image string
}

// ParseBreak parses --break: health, version, slow[:DURATION], flaky[:P],
// startup or simulate.
func ParseBreak(spec string) (Break, error) {
	mode, arg, hasArg := strings.Cut(spec, ":")
	b := Break{Mode: mode, Spec: spec}
	switch mode {
	case BreakHealth, BreakVersion, BreakStartup, BreakSimulate:
		if hasArg {
			return b, fmt.Errorf("--break %s takes no argument (got %q)", mode, spec)
		}
	case BreakSlow:
		if hasArg {
			d, err := time.ParseDuration(arg)
			if err != nil || d <= 0 {
				return b, fmt.Errorf("--break slow:%s: want a positive Go duration such as slow:10s", arg)
			}
		}
	case BreakFlaky:
		if hasArg {
			p, err := strconv.Atoi(arg)
			if err != nil || p < 1 || p > 100 {
				return b, fmt.Errorf("--break flaky:%s: want a failure percent from 1 to 100, such as flaky:50", arg)
			}
		} else {
			b.Spec = "flaky:50"
		}
	default:
		return b, fmt.Errorf("--break %q is not a break mode: use health, version, slow[:DURATION], flaky[:PERCENT], startup or simulate", spec)
	}
	if mode != BreakSimulate {
		b.Env = map[string]string{BreakEnvVar: b.Spec}
	}
	return b, nil
}

// ParseEnvAssignment parses KEY=VALUE for --break-env.
func ParseEnvAssignment(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("--break-env %q: want KEY=VALUE", s)
	}
	for _, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return "", "", fmt.Errorf("--break-env %q: the name may use letters, digits and '_' only", s)
		}
	}
	return k, v, nil
}
