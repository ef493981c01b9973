// Command runrollback proves that a Cloud Run service can be rolled back, and rolls
// it back when a deploy goes bad. See README.md for its use and docs/design.md for
// how it is built.
package main

import "os"

func main() {
	os.Exit(Main(os.Args, os.Stdout, os.Stderr, os.Getenv))
}
