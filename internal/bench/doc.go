// Package bench is the benchmark behind BENCHMARKS.md: the real runrollback
// command (built once into a temporary directory and run as a process)
// against the fake Cloud Run, with realistic latencies scaled down, under
// open-loop user load, each procedure's figures stated against the floor
// its model allows.
//
// The harness is here: the latency model and its floors (Model), the fake
// world with Cloud Run's operation time played on top of it (World), the
// open-loop, fixed-rate load generator (Load), the quota proxy (QuotaProxy),
// the command runner with its whole-process figures (CLI), and the procedures
// (the drill, the usual approach, the guard, guard --candidate, a fleet
// drill, the detector's error rates). The entry points are benchmarks in
// bench_test.go:
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/bench/
//	go test -run '^$' -bench . -benchtime 3x ./internal/bench/ -update-benchmarks
//
// The second writes BENCHMARKS.md at the repository's root from the run:
// every figure in it is measured by that run, next to the model's
// assumptions, the commit, the machine and the load average.
package bench
