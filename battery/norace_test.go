//go:build !race

package battery

const raceBuild = false
