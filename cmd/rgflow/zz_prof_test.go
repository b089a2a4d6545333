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
	args := append([]string{"lattice", "--steps", "40", "--out", filepath.Join(t.TempDir(), "r"), "--eval-samples", "0"}, strings.Fields(os.Getenv("RGARGS"))...)
	_ = 0
	if err := runTrain(args, &o, &e); err != nil {
		t.Fatal(err)
	}
	t.Log(o.String())
}
