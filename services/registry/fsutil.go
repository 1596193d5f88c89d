package registry

import (
	"fmt"
	"os"
	"path/filepath"
)

// mkdirSync creates dir (and parents) and fsyncs the parent of every
// directory it created, so that the new entries survive a crash.
func mkdirSync(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory so that renames and creations in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// renameSync moves a fully written and fsynced file into place and fsyncs
// both directories.
func renameSync(from, to string) error {
	if err := mkdirSync(filepath.Dir(to)); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(to)); err != nil {
		return err
	}
	if fd, td := filepath.Dir(from), filepath.Dir(to); fd != td {
		return syncDir(fd)
	}
	return nil
}

func (s *Store) blobPath(d Digest) string {
	h := d.Hex()
	return filepath.Join(s.dir, "blobs", "sha256", h[:2], h)
}

func (s *Store) uploadPath(id string) string {
	return filepath.Join(s.dir, "uploads", id)
}
