package hardware

import (
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// sysfsCaches reads Linux's cache description of one CPU (the FS is rooted at
// /sys/devices/system/cpu/cpuN/cache): directories index*/ with files level,
// type (Data, Instruction, Unified) and size ("48K", "2048K", "32M").
// Missing or malformed entries are skipped.
func sysfsCaches(fsys fs.FS) (l1d, l2, l3 int64) {
	dirs, err := fs.Glob(fsys, "index*")
	if err != nil {
		return 0, 0, 0
	}
	for _, d := range dirs {
		level := readTrim(fsys, path.Join(d, "level"))
		typ := readTrim(fsys, path.Join(d, "type"))
		size := parseSize(readTrim(fsys, path.Join(d, "size")))
		if size <= 0 || typ == "Instruction" {
			continue
		}
		switch level {
		case "1":
			l1d = max(l1d, size)
		case "2":
			l2 = max(l2, size)
		case "3":
			l3 = max(l3, size)
		}
	}
	return l1d, l2, l3
}

func readTrim(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// parseSize parses sysfs sizes: a decimal number with an optional K, M or G
// suffix (binary units). It returns 0 for anything else.
func parseSize(s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0
	}
	return n * mult
}

// cpuinfoBrand returns the first "model name" of a /proc/cpuinfo text.
func cpuinfoBrand(cpuinfo string) string {
	for line := range strings.Lines(cpuinfo) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
