package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine is where a run was made.
type Machine struct {
	CPUs    int
	Go      string
	OSArch  string
	Kernel  string
	CPU     string
	Memory  string
	Commit  string
	Dirty   []string // files that differ from the commit
	RootDir string
}

// ThisMachine describes the machine and the tree in dir (the module root).
func ThisMachine(dir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH, RootDir: dir}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseFloat(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 64); err == nil {
		m.Memory = fmt.Sprintf("%.0f GiB of memory", kb/(1<<20))
	}
	if out, err := gitOut(dir, "rev-parse", "--short", "HEAD"); err == nil {
		m.Commit = out
	}
	if out, err := gitOut(dir, "status", "--porcelain", "--untracked-files=no"); err == nil && out != "" {
		for _, l := range strings.Split(out, "\n") {
			if len(l) > 3 {
				m.Dirty = append(m.Dirty, strings.TrimSpace(l[3:]))
			}
		}
	}
	return m
}

func gitOut(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	return strings.TrimSpace(string(b)), err
}

func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAverage is /proc/loadavg's 1, 5 and 15 minute figures.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// ModuleRoot is the directory holding go.mod, from dir upwards.
func ModuleRoot(dir string) string {
	for d := dir; ; {
		if _, err := os.Stat(d + "/go.mod"); err == nil {
			return d
		}
		parent := d[:max(strings.LastIndexByte(d, '/'), 0)]
		if parent == "" || parent == d {
			return dir
		}
		d = parent
	}
}
