package rollback

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseShard(t *testing.T) {
	tests := []struct {
		in      string
		want    Shard
		wantErr string // substring; "" means valid
	}{
		{"0/1", Shard{0, 1}, ""},
		{"0/2", Shard{0, 2}, ""},
		{"1/2", Shard{1, 2}, ""},
		{"9999/10000", Shard{9999, 10000}, ""},
		{"2/2", Shard{}, "parts count from 0, so use 0 to 1"},
		{"0/0", Shard{}, "1 or more"},
		{"0/10001", Shard{}, "at most 10000"},
		{"-1/2", Shard{}, "whole numbers"},
		{"+1/2", Shard{}, "whole numbers"},
		{" 1/2", Shard{}, "whole numbers"},
		{"1/2/3", Shard{}, "whole numbers"},
		{"1", Shard{}, "want I/N"},
		{"", Shard{}, "want I/N"},
		{"a/b", Shard{}, "whole numbers"},
		{"/2", Shard{}, "whole numbers"},
		{"99999999999999999999/2", Shard{}, "whole numbers"},
	}
	for _, tt := range tests {
		got, err := ParseShard(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseShard(%q) = %v, want %v", tt.in, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseShard(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
		case err == nil && got != tt.want:
			t.Errorf("ParseShard(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestShardFromTask(t *testing.T) {
	tests := []struct {
		index, count string
		want         Shard
		wantErr      string
	}{
		{"0", "1", Shard{0, 1}, ""},
		{"3", "4", Shard{3, 4}, ""},
		{"4", "4", Shard{}, "use 0 to 3"},
		{"", "4", Shard{}, "set both"},
		{"1", "", Shard{}, "set both"},
		{"x", "4", Shard{}, "whole numbers"},
		{"0", "0", Shard{}, "1 or more"},
	}
	for _, tt := range tests {
		got, err := ShardFromTask(tt.index, tt.count)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("ShardFromTask(%q, %q) = %v, %v; want %v", tt.index, tt.count, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ShardFromTask(%q, %q) = %v, %v; want an error containing %q", tt.index, tt.count, got, err, tt.wantErr)
		}
	}
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/1", "3/4", "4/4", "-1/3", "a/b", "0/10000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := ParseShard(s)
		if err != nil {
			return
		}
		if sh.Validate() != nil {
			t.Fatalf("ParseShard(%q) = %v, which is not valid", s, sh)
		}
		again, err := ParseShard(sh.String())
		if err != nil || again != sh {
			t.Fatalf("ParseShard(%q) = %v, %v after a round trip of %q", sh.String(), again, err, s)
		}
	})
}

// randomSelection is a selection of services over a few projects and
// regions, of uneven sizes, in random order.
func randomSelection(r *rand.Rand) []ServiceRef {
	var refs []ServiceRef
	projects := 1 + r.IntN(3)
	regions := []string{"us-central1", "europe-west1", "asia-east1", "us-east4"}
	for p := range projects {
		for _, region := range regions[:1+r.IntN(len(regions))] {
			for s := range r.IntN(12) {
				refs = append(refs, ServiceRef{Project: fmt.Sprintf("proj-%d", p), Region: region, Name: fmt.Sprintf("svc-%d", s)})
			}
		}
	}
	r.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
	return refs
}

// TestShardSelectProperties checks, over many random selections and shard
// counts: the parts together are the selection, each service in exactly one
// part; every (project, region) group lies in exactly one part; the plan does
// not depend on the order of the selection; a part is empty only when there
// are fewer groups than parts; and no part holds more services than the
// lightest one plus the largest group.
func TestShardSelectProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 300 {
		refs := randomSelection(r)
		n := 1 + r.IntN(8)
		shuffled := slices.Clone(refs)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

		seen := map[ServiceRef]int{}
		groupPart := map[[2]string]int{}
		groupSize := map[[2]string]int{}
		for _, ref := range refs {
			groupSize[[2]string{ref.Project, ref.Region}]++
		}
		largest := 0
		for _, c := range groupSize {
			largest = max(largest, c)
		}
		var loads []int
		for i := range n {
			sh := Shard{Index: i, Count: n}
			got, sec := sh.Select(refs)
			again, secAgain := sh.Select(shuffled)
			if diff := cmp.Diff(sec, secAgain); diff != "" {
				t.Fatalf("iter %d: shard %v of a reordered selection differs (-first +reordered):\n%s", iter, sh, diff)
			}
			if !sameSet(got, again) {
				t.Fatalf("iter %d: shard %v of a reordered selection = %v, want %v", iter, sh, again, got)
			}
			if sec.Services != len(got) || sec.SelectedServices != len(refs) || sec.SelectedGroups != len(groupSize) {
				t.Fatalf("iter %d: shard %v section %+v for %d of %d services in %d groups", iter, sh, sec, len(got), len(refs), len(groupSize))
			}
			sum := 0
			for _, g := range sec.Groups {
				k := [2]string{g.Project, g.Region}
				if prev, ok := groupPart[k]; ok {
					t.Fatalf("iter %d: group %v in parts %d and %d", iter, k, prev, i)
				}
				groupPart[k] = i
				if g.Services != groupSize[k] {
					t.Fatalf("iter %d: group %v has %d services in part %d, want all %d", iter, k, g.Services, i, groupSize[k])
				}
				sum += g.Services
			}
			if sum != len(got) {
				t.Fatalf("iter %d: part %d's groups hold %d services, it drills %d", iter, i, sum, len(got))
			}
			for j, ref := range got {
				seen[ref]++
				if groupPart[[2]string{ref.Project, ref.Region}] != i {
					t.Fatalf("iter %d: part %d drills %v, whose group is not its own", iter, i, ref)
				}
				if j > 0 && slices.Index(refs, got[j-1]) > slices.Index(refs, ref) {
					t.Fatalf("iter %d: part %d's services %v are not in the selection's order", iter, i, got)
				}
			}
			loads = append(loads, len(got))
		}
		for _, ref := range refs {
			if seen[ref] != 1 {
				t.Fatalf("iter %d: %v drilled by %d parts, want exactly 1", iter, ref, seen[ref])
			}
		}
		if len(seen) != len(refs) || len(groupPart) != len(groupSize) {
			t.Fatalf("iter %d: %d services and %d groups drilled, want %d and %d", iter, len(seen), len(groupPart), len(refs), len(groupSize))
		}
		nonEmpty := 0
		for _, l := range loads {
			if l > 0 {
				nonEmpty++
			}
		}
		if nonEmpty != min(n, len(groupSize)) {
			t.Fatalf("iter %d: %d of %d parts have work with %d groups, want %d", iter, nonEmpty, n, len(groupSize), min(n, len(groupSize)))
		}
		if lo, hi := slices.Min(loads), slices.Max(loads); hi-lo > largest {
			t.Fatalf("iter %d: parts hold %v services: %d more than the lightest, and the largest group has %d", iter, loads, hi-lo, largest)
		}
	}
}

func sameSet(a, b []ServiceRef) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	less := func(p, q ServiceRef) int {
		return strings.Compare(p.Project+"/"+p.Region+"/"+p.Name, q.Project+"/"+q.Region+"/"+q.Name)
	}
	slices.SortFunc(x, less)
	slices.SortFunc(y, less)
	return slices.Equal(x, y)
}

// TestPlanShardsLargestFirst pins the plan of one selection: the largest
// group first onto part 0, then each onto the least-loaded part, ties by
// name and index.
func TestPlanShardsLargestFirst(t *testing.T) {
	var refs []ServiceRef
	add := func(project, region string, n int) {
		for i := range n {
			refs = append(refs, ServiceRef{Project: project, Region: region, Name: fmt.Sprintf("s%d", i)})
		}
	}
	add("p", "us-central1", 5)
	add("p", "europe-west1", 3)
	add("q", "us-central1", 3)
	add("p", "asia-east1", 2)
	add("q", "europe-west1", 1)
	got := PlanShards(refs, 2)
	want := [][]ShardGroup{
		{{"p", "asia-east1", 2}, {"p", "us-central1", 5}},
		{{"p", "europe-west1", 3}, {"q", "europe-west1", 1}, {"q", "us-central1", 3}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PlanShards(…, 2) mismatch (-want +got):\n%s", diff)
	}
}

func TestShardMoreThanGroups(t *testing.T) {
	refs := []ServiceRef{{"p", "us-central1", "api"}, {"p", "us-central1", "web"}}
	got, sec := Shard{Index: 0, Count: 3}.Select(refs)
	if len(got) != 2 || !strings.Contains(sec.Describe(), "2 of 2 services, 1 of 1 project/region group: p/us-central1 (2)") {
		t.Errorf("shard 0/3 = %v, %q; want both services", got, sec.Describe())
	}
	for _, i := range []int{1, 2} {
		got, sec := Shard{Index: i, Count: 3}.Select(refs)
		if len(got) != 0 || len(sec.Groups) != 0 || sec.Groups == nil {
			t.Errorf("shard %d/3 = %v, groups %#v; want nothing, and an empty list", i, got, sec.Groups)
		}
		if d := sec.Describe(); !strings.Contains(d, "nothing to do") || !strings.Contains(d, "the selection (2 services in 1 project/region group) has fewer groups than the 3 parts") {
			t.Errorf("shard %d/3 Describe() = %q, want it to say there is nothing to do and why", i, d)
		}
	}
}
