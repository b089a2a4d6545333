package main

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"rgflow/checkpoints"
	"rgflow/datasets/lattice"
)

// mcmcJSON runs rgflow mcmc --json with args and decodes the output.
func mcmcJSON(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := runMCMC(append(args, "--json"), &out, &errb); err != nil {
		t.Fatalf("mcmc %v: %v (stderr %q)", args, err, errb.String())
	}
	if strings.Count(strings.TrimSpace(out.String()), "\n") != 0 {
		t.Fatalf("--json printed more than one line:\n%s", out.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	return m, out.String()
}

// pair returns observables[name] as (value, error).
func pair(t *testing.T, m map[string]any, name string) (float64, float64) {
	t.Helper()
	obs, ok := m["observables"].(map[string]any)
	if !ok {
		t.Fatalf("no observables object: %v", m)
	}
	p, ok := obs[name].([]any)
	if !ok || len(p) != 2 {
		t.Fatalf("observables[%q] = %v, want [value, error]", name, obs[name])
	}
	v, _ := p[0].(float64)
	e, _ := p[1].(float64)
	return v, e
}

func TestMCMCJSONFreeField(t *testing.T) {
	const L, m2 = 4, 0.5
	m, out := mcmcJSON(t, "--action", "free", "--L", "4", "--m2", "0.5", "--trajectories", "3000",
		"--thermalize", "200", "--chains", "4", "--seed", "3")
	if m["action"] != "free" || m["L"] != 4.0 {
		t.Errorf("action/L: %v %v", m["action"], m["L"])
	}
	params := m["params"].(map[string]any)
	if params["m2"] != 0.5 || params["lambda"] != 0.0 {
		t.Errorf("params %v", params)
	}
	for _, k := range []string{"abs_m", "chi", "chi_c", "phi2", "G_half", "U4", "xi2", "mR2", "Z", "gR"} {
		pair(t, m, k)
		if _, ok := m["tau_int"].(map[string]any)[k]; !ok {
			t.Errorf("tau_int lacks %q", k)
		}
	}
	if acc, _ := m["acceptance"].(float64); !(acc > 0.5 && acc <= 1) {
		t.Errorf("acceptance %v", m["acceptance"])
	}
	// The physics: 4σ against the exact free field (lattice package references).
	for _, c := range []struct {
		name  string
		exact float64
	}{{"phi2", lattice.FreeG(L, m2, 0, 0)}, {"chi", 1 / m2}, {"G_half", lattice.FreeG(L, m2, L/2, 0)}} {
		v, e := pair(t, m, c.name)
		if math.Abs(v-c.exact) > 4*e {
			t.Errorf("%s = %g ± %g, exact %g", c.name, v, e, c.exact)
		}
	}
	// Same seed ⇒ identical output, whatever the number of workers.
	_, again := mcmcJSON(t, "--action", "free", "--L", "4", "--m2", "0.5", "--trajectories", "3000",
		"--thermalize", "200", "--chains", "4", "--seed", "3", "--workers", "1")
	if again != out {
		t.Error("same seed, different output")
	}
}

func TestMCMCConventionsAgree(t *testing.T) {
	// The AKS benchmark point (m_A² = −4, λ_A = 6.008) is standard λ = 1.502: same chain, same numbers.
	_, std := mcmcJSON(t, "--L", "4", "--m2", "-4", "--lambda", "1.502", "--trajectories", "50", "--thermalize", "10", "--chains", "2")
	m, aks := mcmcJSON(t, "--L", "4", "--m2", "-4", "--lambda", "6.008", "--convention", "aks", "--trajectories", "50", "--thermalize", "10", "--chains", "2")
	obsOf := func(s string) string { return s[strings.Index(s, `"observables"`):] }
	if obsOf(std) != obsOf(aks) {
		t.Errorf("standard and AKS runs of the same point differ:\n%s\n%s", std, aks)
	}
	if cp := m["convention_params"].(map[string]any); cp["lambda_a"] != 6.008 {
		t.Errorf("convention_params %v", cp)
	}
	// Hopping: κ, λ_H converted to standard.
	m, _ = mcmcJSON(t, "--action", "o2", "--L", "4", "--convention", "hopping", "--kappa", "0.15", "--lambda-h", "1.145",
		"--trajectories", "50", "--thermalize", "10", "--chains", "1")
	wantM2, wantLam := lattice.HoppingToStandard(0.15, 1.145)
	p := m["params"].(map[string]any)
	if math.Abs(p["m2"].(float64)-wantM2) > 1e-12 || math.Abs(p["lambda"].(float64)-wantLam) > 1e-12 {
		t.Errorf("hopping params %v, want m2=%v lambda=%v", p, wantM2, wantLam)
	}
	for _, k := range []string{"helicity", "abs_mean_field"} {
		pair(t, m, k)
	}
	m, _ = mcmcJSON(t, "--action", "ising", "--L", "4", "--trajectories", "50", "--thermalize", "10", "--chains", "1")
	for _, k := range []string{"m2_improved", "abs_m_spin"} {
		pair(t, m, k)
	}
	if p := m["params"].(map[string]any); math.Abs(p["T"].(float64)-lattice.IsingTc()) > 1e-12 {
		t.Errorf("ising default T: %v", p)
	}
}

func TestMCMCOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.npz")
	var out bytes.Buffer
	if err := runMCMC([]string{"--action", "o2", "--L", "4", "--m2", "-1", "--lambda", "0.5", "--trajectories", "20", "--every", "2",
		"--thermalize", "5", "--chains", "3", "--out", path}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "helicity") {
		t.Errorf("table lacks helicity:\n%s", out.String())
	}
	arrs, err := checkpoints.ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]checkpoints.Array{}
	for _, a := range arrs {
		got[a.Name] = a
	}
	if sh := got["phi"].Shape; len(sh) != 4 || sh[0] != 30 || sh[1] != 2 || sh[2] != 4 || sh[3] != 4 {
		t.Errorf("phi shape %v, want [30 2 4 4]", sh)
	}
	// The stored action is the action of the stored configuration.
	a, _ := lattice.NewO2(4, -1, 0.5)
	phi := got["phi"].Data.([]float64)
	act := got["action"].Data.([]float64)
	for i := range act {
		if s := a.Eval(phi[i*32 : (i+1)*32]); math.Abs(s-act[i]) > 1e-9*(1+math.Abs(s)) {
			t.Fatalf("row %d: action %g, Eval %g", i, act[i], s)
		}
	}
	if ch := got["chain"].Data.([]int64); ch[0] != 0 || ch[1] != 1 || ch[3] != 0 {
		t.Errorf("chain order %v", ch[:4])
	}
	if tr := got["trajectory"].Data.([]int64); tr[0] != 2 || tr[3] != 4 {
		t.Errorf("trajectory numbers %v", tr[:4])
	}
}

func TestMCMCBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--L", "7"}, "L=7 is odd"},
		{[]string{"--action", "potts"}, "want free, phi4, o2 or ising"},
		{[]string{"--convention", "hopping"}, "--kappa"},
		{[]string{"--convention", "hopping", "--kappa", "0.2"}, "--lambda-h"},
		{[]string{"--convention", "hopping", "--kappa", "0.2", "--lambda-h", "1", "--m2", "1"}, "--m2 is not used"},
		{[]string{"--convention", "wilson"}, "want standard, aks or hopping"},
		{[]string{"--kappa", "0.2"}, "--kappa is not used"},
		{[]string{"--action", "free", "--m2", "-1"}, "m2 > 0"},
		{[]string{"--action", "free", "--m2", "1", "--lambda", "0.1"}, "use --action phi4"},
		{[]string{"--action", "ising", "--T", "-1"}, "T > 0"},
		{[]string{"--T", "2"}, "only used by --action ising"},
		{[]string{"--lambda", "-1"}, "negative"},
		{[]string{"--trajectories", "1"}, "--trajectories"},
		{[]string{"--chains", "0"}, "--chains"},
		{[]string{"--every", "0"}, "--every"},
		{[]string{"--step", "-0.1"}, "--step"},
		{[]string{"--target-accept", "1"}, "--target-accept"},
		{[]string{"--L", "x"}, "invalid value"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--out", "/nonexistent-dir/x.npz", "--trajectories", "4", "--thermalize", "0", "--L", "2"}, "--out"},
	} {
		var out, errb bytes.Buffer
		err := runMCMC(c.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("mcmc %v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func TestJSONNumNull(t *testing.T) {
	b, err := json.Marshal(map[string][2]jsonNum{"mR2": {jsonNum(math.NaN()), jsonNum(math.Inf(1))}, "chi": {1.5, 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"chi":[1.5,0.25],"mR2":[null,null]}` {
		t.Errorf("got %s", b)
	}
}

func TestMCMCHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if err := runMCMC([]string{"-h"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "-convention") || errb.Len() > 0 {
		t.Errorf("help text on stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
}

// TestMCMCAnyEvenL: mcmc runs on even sizes that are not powers of two (the reference diffusion size is 20).
func TestMCMCAnyEvenL(t *testing.T) {
	for _, L := range []string{"12", "20"} {
		m, _ := mcmcJSON(t, "--action", "free", "--L", L, "--m2", "0.5", "--trajectories", "40", "--thermalize", "10",
			"--chains", "2", "--seed", "1")
		if m["L"] != map[string]float64{"12": 12, "20": 20}[L] {
			t.Errorf("--L %s: output L = %v", L, m["L"])
		}
	}
}
