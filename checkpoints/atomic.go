package checkpoints

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// tempPattern is the os.CreateTemp pattern of the temporary file WriteFileAtomic writes for base.
func tempPattern(base string) string { return "." + base + ".tmp-*" }

// isTempName reports whether name looks like a WriteFileAtomic temporary file.
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// WriteFileAtomic writes path so that a crash at any point leaves either the old file (or none) or the complete new
// one: write gets a buffered writer on a temporary file ".BASE.tmp-*" in the same directory, which is then flushed,
// fsynced, closed, made 0644 and renamed over path, and the directory is fsynced. If write or any step fails, the
// temporary file is removed and path is untouched.
func WriteFileAtomic(path string, write func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPattern(base))
	if err != nil {
		return fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close() // the write already failed; this error adds nothing
			}
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("checkpoints: %s: writing %s: %w", path, tmp, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("checkpoints: %s: fsync %s: %w", path, tmp, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("checkpoints: %s: closing %s: %w", path, tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		// The file is complete and in place; only its durability across a power cut is in doubt.
		return fmt.Errorf("checkpoints: %s: fsync directory: %w", path, err)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename in it is durable. Platforms that cannot fsync a directory
// (os.ErrInvalid / EINVAL, e.g. Windows) are not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil && !errors.Is(serr, os.ErrInvalid) && !errors.Is(serr, syscall.EINVAL) {
		return serr
	}
	return cerr
}
