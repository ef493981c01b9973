//go:build race

package battery

// raceBuild builds the binary under test with the race detector when the
// battery itself runs under it.
const raceBuild = true
