package rollback

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxShards bounds N in --shard I/N: Cloud Run Jobs runs at most 10,000 tasks
// in one execution, and a GitHub Actions matrix far fewer jobs.
const MaxShards = 10000

// Shard is the part of a fleet selection one worker drills: the Index-th
// (from 0, as CLOUD_RUN_TASK_INDEX counts) of Count parts.
type Shard struct {
	Index, Count int
}

// String is the shard as --shard spells it: "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// ParseShard parses --shard I/N: two whole numbers, I from 0 to N-1 and N
// from 1 to MaxShards.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("--shard %q: want I/N, e.g. 0/4 for the first of 4 parts (I counts from 0)", s)
	}
	i, ierr := parseCount(is)
	n, nerr := parseCount(ns)
	if ierr != nil || nerr != nil {
		return Shard{}, fmt.Errorf("--shard %q: want I/N with whole numbers, e.g. 0/4 for the first of 4 parts (I counts from 0)", s)
	}
	sh := Shard{Index: i, Count: n}
	if err := sh.Validate(); err != nil {
		return Shard{}, fmt.Errorf("--shard %s: %w", s, err)
	}
	return sh, nil
}

// ShardFromTask is the shard of a Cloud Run Jobs task, from its
// CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT (both needed).
func ShardFromTask(index, count string) (Shard, error) {
	what := fmt.Sprintf("CLOUD_RUN_TASK_INDEX=%q CLOUD_RUN_TASK_COUNT=%q", index, count)
	if index == "" || count == "" {
		return Shard{}, fmt.Errorf("%s: a Cloud Run Jobs task has both; set both, or pass --shard I/N", what)
	}
	i, ierr := parseCount(index)
	n, nerr := parseCount(count)
	if ierr != nil || nerr != nil {
		return Shard{}, fmt.Errorf("%s: want whole numbers", what)
	}
	sh := Shard{Index: i, Count: n}
	if err := sh.Validate(); err != nil {
		return Shard{}, fmt.Errorf("%s: %w", what, err)
	}
	return sh, nil
}

// parseCount parses a whole number written in decimal digits only: no sign,
// no spaces.
func parseCount(s string) (int, error) {
	if s == "" || len(s) > 6 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a whole number: %q", s)
	}
	return strconv.Atoi(s)
}

// Validate checks that the shard is one of its parts.
func (s Shard) Validate() error {
	switch {
	case s.Count < 1:
		return fmt.Errorf("the number of parts must be 1 or more")
	case s.Count > MaxShards:
		return fmt.Errorf("%d parts: at most %d", s.Count, MaxShards)
	case s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("part %d of %d does not exist: parts count from 0, so use 0 to %d", s.Index, s.Count, s.Count-1)
	}
	return nil
}

// ShardGroup is one (project, region) of a selection and how many of the
// selected services it holds: the unit a shard owns, since Cloud Run's write
// quota is per project and region.
type ShardGroup struct {
	Project  string `json:"project"`
	Region   string `json:"region"`
	Services int    `json:"services"`
}

// PlanShards splits the groups of refs into n parts (n >= 1): every (project,
// region) group goes whole to exactly one part, so the parts together never
// make more writes in a region than one part's limiter allows. It balances by
// service count: groups largest first (ties by project, then region) each go
// to the part with the fewest services so far (ties to the lowest index).
// The plan depends only on the set of groups and their sizes, never on the
// order of refs or the machine, so every worker given the same selection
// computes the same plan. Each part's groups are sorted by project and region.
func PlanShards(refs []ServiceRef, n int) [][]ShardGroup {
	n = max(n, 1)
	counts := map[[2]string]int{}
	for _, r := range refs {
		counts[[2]string{r.Project, r.Region}]++
	}
	groups := make([]ShardGroup, 0, len(counts))
	for k, c := range counts {
		groups = append(groups, ShardGroup{Project: k[0], Region: k[1], Services: c})
	}
	slices.SortFunc(groups, func(a, b ShardGroup) int {
		return cmp.Or(cmp.Compare(b.Services, a.Services), cmp.Compare(a.Project, b.Project), cmp.Compare(a.Region, b.Region))
	})
	parts := make([][]ShardGroup, n)
	load := make([]int, n)
	for _, g := range groups {
		least := 0
		for i := 1; i < n; i++ {
			if load[i] < load[least] {
				least = i
			}
		}
		parts[least] = append(parts[least], g)
		load[least] += g.Services
	}
	for _, p := range parts {
		slices.SortFunc(p, func(a, b ShardGroup) int {
			return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Region, b.Region))
		})
	}
	return parts
}

// ShardSection is the report's account of a sharded fleet drill: which part
// this run drilled, where that came from, the groups it owned and how much of
// the whole selection that was. docs/report.md documents it.
type ShardSection struct {
	Index int `json:"index"`
	Count int `json:"count"`
	// Source is where the shard came from: "--shard", or
	// "CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT" for a Cloud Run Jobs task.
	Source string `json:"source"`
	// Groups are the (project, region) groups this part drills; empty when
	// the part has nothing to do.
	Groups []ShardGroup `json:"groups"`
	// Services is how many services this part drills; SelectedServices and
	// SelectedGroups are the whole selection's, over all parts.
	Services         int `json:"services"`
	SelectedServices int `json:"selected_services"`
	SelectedGroups   int `json:"selected_groups"`
}

// Select returns the services of refs that part s drills, in the order of
// refs, and the report's shard section (Source left to the caller).
func (s Shard) Select(refs []ServiceRef) ([]ServiceRef, *ShardSection) {
	parts := PlanShards(refs, s.Count)
	mine := parts[s.Index]
	owned := map[[2]string]bool{}
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	for _, g := range mine {
		owned[[2]string{g.Project, g.Region}] = true
	}
	var out []ServiceRef
	for _, r := range refs {
		if owned[[2]string{r.Project, r.Region}] {
			out = append(out, r)
		}
	}
	sec := &ShardSection{Index: s.Index, Count: s.Count, Groups: slices.Clip(mine),
		Services: len(out), SelectedServices: len(refs), SelectedGroups: total}
	if sec.Groups == nil {
		sec.Groups = []ShardGroup{}
	}
	return out, sec
}

// Describe says in one line what the part drills, or that it has nothing to
// do and why.
func (sec *ShardSection) Describe() string {
	head := fmt.Sprintf("shard %d/%d", sec.Index, sec.Count)
	groups := plural(sec.SelectedGroups, "project/region group")
	if sec.Services == 0 {
		// Only a part beyond the number of groups is empty: PlanShards gives
		// each of the first groups to a part of its own.
		return fmt.Sprintf("%s: nothing to do: the selection (%s in %s) has fewer groups than the %d parts, and each group goes whole to one part", head, plural(sec.SelectedServices, "service"), groups, sec.Count)
	}
	var names []string
	for _, g := range sec.Groups {
		names = append(names, fmt.Sprintf("%s/%s (%d)", g.Project, g.Region, g.Services))
	}
	return fmt.Sprintf("%s: %d of %d services, %d of %s: %s", head, sec.Services, sec.SelectedServices, len(sec.Groups), groups, strings.Join(names, ", "))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
