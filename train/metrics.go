package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"rgflow/checkpoints"
)

// metricsFile is the name of the metrics log in a run directory.
const metricsFile = "metrics.jsonl"

// metricsWriter appends one JSON object per logged step to metrics.jsonl. Each line goes out in one write(2) on
// an O_APPEND file, so a crash leaves at most one torn last line, which Resume removes.
type metricsWriter struct {
	f    *os.File
	path string
	buf  []byte
	keys []string
}

// reservedKeys are the trainer's own fields of a metrics line; objective metrics may not reuse them.
var reservedKeys = [...]string{"step", "loss", "loss_mean", "lr", "grad_norm", "clipped", "wall_s"}

func openMetrics(path string, truncate bool) (*metricsWriter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if truncate {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &metricsWriter{f: f, path: path}, nil
}

// write appends rec as one line.
func (w *metricsWriter) write(rec Record) error {
	b := w.buf[:0]
	b = append(b, `{"step":`...)
	b = strconv.AppendInt(b, rec.Step, 10)
	b = appendKV(b, "loss", rec.Loss)
	b = appendKV(b, "loss_mean", rec.LossMean)
	b = appendKV(b, "lr", rec.LR)
	b = appendKV(b, "grad_norm", rec.GradNorm)
	b = append(b, `,"clipped":`...)
	b = strconv.AppendBool(b, rec.Clipped)
	b = appendKV(b, "wall_s", rec.Wall.Seconds())
	if len(rec.Metrics) > 0 {
		w.keys = w.keys[:0]
		for k := range rec.Metrics {
			if slices.Contains(reservedKeys[:], k) {
				return fmt.Errorf("train: step %d: objective metric %q clashes with a field of %s; rename it", rec.Step, k, metricsFile)
			}
			w.keys = append(w.keys, k)
		}
		slices.Sort(w.keys)
		for _, k := range w.keys {
			b = appendKV(b, k, rec.Metrics[k])
		}
	}
	b = append(b, "}\n"...)
	w.buf = b
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("train: step %d: appending to %s: %w", rec.Step, w.path, err)
	}
	return nil
}

// appendKV appends ,"key":value with NaN and ±Inf written as null (JSON has no such numbers).
func appendKV(b []byte, key string, v float64) []byte {
	b = append(b, ',')
	kj, _ := json.Marshal(key) // a string always marshals
	b = append(b, kj...)
	b = append(b, ':')
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func (w *metricsWriter) close() error {
	serr := w.f.Sync()
	cerr := w.f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("train: closing %s: %w", w.path, err)
	}
	return nil
}

// trimMetrics rewrites path (atomically) keeping only the complete lines of steps ≤ step, so that a resumed run
// does not log the steps after its checkpoint twice. A missing file is fine.
func trimMetrics(path string, step int64) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var rec struct {
			Step *int64 `json:"step"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Step == nil || *rec.Step > step {
			continue
		}
		keep.Write(line)
		keep.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("train: reading %s: %w", path, err)
	}
	if bytes.Equal(keep.Bytes(), data) {
		return nil
	}
	if err := checkpoints.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(keep.Bytes())
		return err
	}); err != nil {
		return fmt.Errorf("train: trimming %s to step %d: %w", path, step, err)
	}
	return nil
}
