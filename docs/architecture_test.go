package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// roots are the top-level directories whose packages architecture.md places.
var roots = []string{"cmd", "services", "shared", "tools", "sdk"}

// tableRow matches a row of the package table: | `path/` | what |.
var tableRow = regexp.MustCompile("(?m)^\\| `([^`]+)/` \\|")

// documented returns the directories of architecture.md's package table.
func documented(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, m := range tableRow.FindAllStringSubmatch(string(b), -1) {
		dirs = append(dirs, m[1])
	}
	if len(dirs) == 0 {
		t.Fatal("architecture.md: no package table rows (| `path/` | what |)")
	}
	return dirs
}

// required returns, relative to the repository root, every directory under
// roots that holds a .go file, and every directory right under a root.
// testdata, node_modules and hidden directories are skipped, as the go
// command skips them.
func required(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, root := range roots {
		err := filepath.WalkDir(filepath.Join("..", root), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel("..", path)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			name := d.Name()
			if d.IsDir() {
				if name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
				if strings.Count(rel, "/") <= 1 {
					dirs = append(dirs, rel)
				}
				return nil
			}
			if strings.HasSuffix(name, ".go") {
				dirs = append(dirs, filepath.ToSlash(filepath.Dir(rel)))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

func TestArchitectureListsEveryPackage(t *testing.T) {
	doc := documented(t)
	for _, dir := range required(t) {
		if !slices.Contains(doc, dir) {
			t.Errorf("docs/architecture.md: no row for `%s/` in the package table: add one saying what it is", dir)
		}
	}
}

func TestArchitectureNamesOnlyExistingDirectories(t *testing.T) {
	for _, dir := range documented(t) {
		if st, err := os.Stat(filepath.Join("..", filepath.FromSlash(dir))); err != nil || !st.IsDir() {
			t.Errorf("docs/architecture.md: the package table names `%s/`, which is not a directory: remove or rename its row", dir)
		}
	}
}

func TestReadmeLinksArchitecture(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "(docs/architecture.md)") {
		t.Error("README.md: got no link to docs/architecture.md, want one")
	}
}
