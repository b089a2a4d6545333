package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
)

func TestZZProfile(t *testing.T) {
	if os.Getenv("RGPROF") == "" {
		t.Skip()
	}
	f, _ := os.Create("/tmp/train.prof")
	pprof.StartCPUProfile(f)
	defer pprof.StopCPUProfile()
	var o, e bytes.Buffer
	args := append(strings.Fields(os.Getenv("RGARGS")), "--out", filepath.Join(t.TempDir(), "r2"))
	if err := runTrain(args, &o, &e); err != nil {
		t.Fatal(err, e.String())
	}
	t.Log(o.String())
}
