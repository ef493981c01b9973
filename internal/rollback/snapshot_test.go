package rollback

import (
	"testing"
)

func TestPinnedAndServing(t *testing.T) {
	snap := Snapshot{
		Traffic:     Split{{Latest: true, Percent: 90}, {Revision: "web-00001-aaa", Percent: 10, Tag: "old"}},
		LatestReady: "web-00002-bbb",
	}
	want := Split{{Revision: "web-00002-bbb", Percent: 90}, {Revision: "web-00001-aaa", Percent: 10, Tag: "old"}}
	if got := snap.Pinned(); !got.Equal(want) {
		t.Errorf("Pinned() = %s, want %s", got, want)
	}
	if got := snap.Serving(); len(got) != 2 || got[0] != "web-00002-bbb" || got[1] != "web-00001-aaa" {
		t.Errorf("Serving() = %v, want [web-00002-bbb web-00001-aaa]", got)
	}
	if !snap.Traffic[0].Latest {
		t.Errorf("Pinned() changed the snapshot's own traffic: %s", snap.Traffic)
	}
}

func TestShiftTo(t *testing.T) {
	tests := []struct {
		split   string
		percent int32
		want    string
	}{
		{"a-1=100", 100, "a-1=0, b-1=100@drill-x"},
		{"a-1=100", 0, "a-1=100, b-1=0@drill-x"},
		{"a-1=90,c-1=10@canary", 100, "a-1=0, c-1=0@canary, b-1=100@drill-x"},
		{"a-1=90,c-1=10@canary", 50, "a-1=45, c-1=5@canary, b-1=50@drill-x"},
		{"a-1=90,c-1=10@canary", 33, "a-1=61, c-1=6@canary, b-1=33@drill-x"},
		{"a-1=50,c-1=50", 1, "a-1=50, c-1=49, b-1=1@drill-x"},
	}
	for _, tt := range tests {
		split, err := ParseSplit(tt.split)
		if err != nil {
			t.Fatal(err)
		}
		got := ShiftTo(split, "b-1", "drill-x", tt.percent)
		if got.String() != tt.want {
			t.Errorf("ShiftTo(%s, %d) = %s, want %s", tt.split, tt.percent, got, tt.want)
		}
		if err := ValidateSplit(got); err != nil {
			t.Errorf("ShiftTo(%s, %d) = %s: %v", tt.split, tt.percent, got, err)
		}
	}
}

func FuzzShiftTo(f *testing.F) {
	f.Add("a-1=90,c-1=10@canary", int32(33))
	f.Fuzz(func(t *testing.T, text string, pct int32) {
		split, err := ParseSplit(text)
		if err != nil || pct < 0 || pct > 100 {
			return
		}
		got := ShiftTo(split, "zz-drill", "drill-zz", pct)
		var sum int32
		for _, tg := range got {
			sum += tg.Percent
			if tg.Percent < 0 {
				t.Fatalf("ShiftTo(%s, %d) = %s: negative percent", split, pct, got)
			}
		}
		if sum != 100 || got[len(got)-1].Percent != pct {
			t.Fatalf("ShiftTo(%s, %d) = %s: want a sum of 100 with %d on the drill entry", split, pct, got, pct)
		}
	})
}

func TestSameSplitAndConverged(t *testing.T) {
	a := Split{{Revision: "a-1", Percent: 90}, {Revision: "b-1", Percent: 10, Tag: "canary"}}
	b := Split{{Revision: "b-1", Percent: 10, Tag: "canary"}, {Revision: "a-1", Percent: 90}}
	if !SameSplit(a, b) {
		t.Errorf("SameSplit(%s, %s) = false, want true (order does not matter)", a, b)
	}
	if SameSplit(a, Split{{Revision: "a-1", Percent: 100}}) {
		t.Errorf("SameSplit of different splits = true")
	}
	svc := &Service{
		Generation: 3, ObservedGeneration: 3, LatestReadyRevision: "a-1",
		Traffic:         Split{{Latest: true, Percent: 100}},
		TrafficStatuses: []TargetStatus{{Target: Target{Revision: "a-1", Percent: 100}}},
	}
	if !svc.Converged() {
		t.Errorf("Converged() = false for a LATEST split resolved to its revision")
	}
	svc.ObservedGeneration = 2
	if svc.Converged() {
		t.Errorf("Converged() = true while a generation is not observed")
	}
}

func TestRollbackTarget(t *testing.T) {
	cur := &Service{
		Ref:                 ServiceRef{Name: "checkout"},
		LatestReadyRevision: "c-3",
		Traffic:             Split{{Revision: "c-2", Percent: 90}, {Revision: "c-3", Percent: 10, Tag: "canary"}, {Revision: "c-1", Percent: 0, Tag: "last-good"}},
	}
	got, _, err := RollbackTarget(cur, RollbackOptions{Tag: "last-good"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "c-3=0@canary, c-1=100@last-good"; got.String() != want {
		t.Errorf("RollbackTarget(tag last-good) = %s, want %s", got, want)
	}
	got, _, err = RollbackTarget(cur, RollbackOptions{To: "c-2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "c-2=100, c-3=0@canary, c-1=0@last-good"; got.String() != want {
		t.Errorf("RollbackTarget(to c-2) = %s, want %s", got, want)
	}
	if _, _, err := RollbackTarget(cur, RollbackOptions{Tag: "nope"}); err == nil {
		t.Errorf("RollbackTarget(tag nope) = nil error, want one")
	}
	snap := &Snapshot{Traffic: Split{{Latest: true, Percent: 100}}, LatestReady: "c-2"}
	got, _, _ = RollbackTarget(cur, RollbackOptions{From: snap})
	if want := "c-2=100"; got.String() != want {
		t.Errorf("RollbackTarget(snapshot with LATEST, now resolving elsewhere) = %s, want %s (pinned)", got, want)
	}
	cur.LatestReadyRevision = "c-2"
	got, _, _ = RollbackTarget(cur, RollbackOptions{From: snap})
	if want := "LATEST=100"; got.String() != want {
		t.Errorf("RollbackTarget(snapshot with LATEST, same resolution) = %s, want %s (verbatim)", got, want)
	}
}
