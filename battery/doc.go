// Package battery is the out-of-process fault battery: its tests build the
// real runrollback binary, run it against a separate 'runrollback fake'
// process with faults injected through the fake's control endpoint, signals
// and concurrent writers, and judge every outcome only by reading the service
// with Google's discovery client (google.golang.org/api/run/v2) over the
// fake's REST surface and by requesting the service's URLs — never through
// runrollback's own reads or reports. RELIABILITY.md ("Out-of-process
// battery") lists the cases; see docs/design.md for the contract they check.
package battery
