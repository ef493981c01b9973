//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package bench

import "os"

// maxRSS is 0 where the process's resource usage has no peak resident set.
func maxRSS(*os.ProcessState) int64 { return 0 }
