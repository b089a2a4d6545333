package losses

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"rgflow/datasets/lattice"
)

// HMCChainsConfig configures HMCChains; zero values are the documented defaults.
type HMCChainsConfig struct {
	Chains int    // K ≥ 1 independent chains
	Seed   uint64 // seeds the thermalisation (lattice.RunHMC) and then every chain's own ChaCha8 stream
	// Thermalize is the number of warm-up trajectories per chain, during which the leapfrog step is tuned
	// (lattice.RunHMC's dual averaging, target acceptance 0.8); zero → 200.
	Thermalize int
	// Every is the number of trajectories each chain runs per Advance (per training step); zero → 1.
	Every int
	// TrajLength is the mean trajectory length τ (leapfrog steps uniform on {1, …, 2n̄−1}, n̄ = round(τ/ε));
	// zero → 1.
	TrajLength float64
}

// HMCChains are K Hybrid Monte Carlo chains of a lattice action that advance while a score is trained
// (the data of DSM without a sample file). They are thermalised on first use (Thermalize), then every
// Advance runs Every trajectories per chain, each followed by the global flip φ → −φ for a Z₂ action, with
// the step size frozen after thermalisation. Their whole state (fields, each chain's ChaCha8 state, step
// sizes, counters) is a string for checkpoints (State, Restore), so a resumed run continues the chains
// bit for bit.
type HMCChains struct {
	act    lattice.HostAction
	cfg    HMCChainsConfig
	hmc    []*lattice.HMC
	src    []*rand.ChaCha8
	ready  bool
	trajs  int64 // trajectories run per chain after thermalisation
	accept int64 // accepted trajectories over all chains
}

// NewHMCChains returns unthermalised chains of act.
func NewHMCChains(act lattice.HostAction, cfg HMCChainsConfig) (*HMCChains, error) {
	if cfg.Chains < 1 {
		return nil, fmt.Errorf("losses: HMC chains: %d chains, want ≥ 1", cfg.Chains)
	}
	if cfg.Thermalize == 0 {
		cfg.Thermalize = 200
	}
	if cfg.Every == 0 {
		cfg.Every = 1
	}
	if cfg.TrajLength == 0 {
		cfg.TrajLength = 1
	}
	if cfg.Thermalize < 0 || cfg.Every < 1 || !(cfg.TrajLength > 0) || math.IsInf(cfg.TrajLength, 0) {
		return nil, fmt.Errorf("losses: HMC chains: thermalize=%d, every=%d, trajectory length %v; want ≥ 0, ≥ 1, > 0", cfg.Thermalize, cfg.Every, cfg.TrajLength)
	}
	return &HMCChains{act: act, cfg: cfg}, nil
}

// Len is the number of chains.
func (h *HMCChains) Len() int { return h.cfg.Chains }

// Size is the number of values of one field, C·L·L.
func (h *HMCChains) Size() int { return h.act.Channels() * h.act.Size() * h.act.Size() }

// Field is chain c's current field (owned by the chain).
func (h *HMCChains) Field(c int) []float64 { return h.hmc[c].Phi() }

// Acceptance is the fraction of accepted trajectories since thermalisation (NaN before any).
func (h *HMCChains) Acceptance() float64 {
	if h.trajs == 0 {
		return math.NaN()
	}
	return float64(h.accept) / float64(h.trajs*int64(h.cfg.Chains))
}

// StepSizes are the chains' frozen leapfrog steps.
func (h *HMCChains) StepSizes() []float64 {
	e := make([]float64, len(h.hmc))
	for i, c := range h.hmc {
		e[i] = c.Eps
	}
	return e
}

// Thermalize runs the warm-up with step-size tuning (once; later calls do nothing).
func (h *HMCChains) Thermalize(ctx context.Context) error {
	if h.ready {
		return nil
	}
	K := h.cfg.Chains
	start := make([][]float64, K)
	res, err := lattice.RunHMC(ctx, h.act, lattice.HMCConfig{Trajectories: 1, Thermalize: h.cfg.Thermalize, Chains: K,
		Seed: h.cfg.Seed, TrajLength: h.cfg.TrajLength}, func(c, _ int, phi []float64, _ float64) {
		start[c] = append([]float64(nil), phi...)
	})
	if err != nil {
		return fmt.Errorf("losses: HMC chains: thermalising: %w", err)
	}
	hmc, src := make([]*lattice.HMC, K), make([]*rand.ChaCha8, K)
	for c := range K {
		var key [32]byte
		kr := lattice.ChainRand(h.cfg.Seed^0x7e57c4a1, c)
		for i := range 4 {
			binary.LittleEndian.PutUint64(key[8*i:], kr.Uint64())
		}
		src[c] = rand.NewChaCha8(key)
		if hmc[c], err = lattice.NewHMC(h.act, rand.New(src[c]), start[c], res.Chains[c].StepSize); err != nil {
			return fmt.Errorf("losses: HMC chains: chain %d: %w", c, err)
		}
	}
	h.hmc, h.src, h.ready = hmc, src, true
	return nil
}

// Advance thermalises the chains if needed and runs Every trajectories per chain.
func (h *HMCChains) Advance() error {
	if err := h.Thermalize(context.Background()); err != nil {
		return err
	}
	flip := h.act.Z2()
	for c, ch := range h.hmc {
		nbar := max(1, int(math.Round(h.cfg.TrajLength/ch.Eps)))
		rng := rand.New(h.src[c])
		for range h.cfg.Every {
			n := nbar
			if nbar > 1 {
				n = 1 + rng.IntN(2*nbar-1)
			}
			if _, acc, _ := ch.Trajectory(n); acc {
				h.accept++
			}
			if flip {
				ch.RandomFlip()
			}
		}
	}
	h.trajs += int64(h.cfg.Every)
	return nil
}

const chainsStateVersion = 1

// State encodes the chains (base64 of a little-endian record: version, K, field size, trajectories,
// accepted, and per chain its step size, ChaCha8 state and field). Unthermalised chains encode as "".
func (h *HMCChains) State() string {
	if !h.ready {
		return ""
	}
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	w(uint32(chainsStateVersion))
	w(uint32(len(h.hmc)))
	w(uint32(h.Size()))
	w(h.trajs)
	w(h.accept)
	for c, ch := range h.hmc {
		w(ch.Eps)
		st, err := h.src[c].MarshalBinary()
		if err != nil {
			panic(fmt.Sprintf("losses: HMC chains: ChaCha8 state: %v", err)) // cannot fail for ChaCha8
		}
		w(uint32(len(st)))
		b.Write(st)
		w(ch.Phi())
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// Restore sets the chains from State's encoding, validating all of it first ("" leaves them unthermalised).
func (h *HMCChains) Restore(s string) error {
	if s == "" {
		h.hmc, h.src, h.ready, h.trajs, h.accept = nil, nil, false, 0, 0
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("HMC chain state: %w", err)
	}
	r := bytes.NewReader(raw)
	rd := func(v any) error { return binary.Read(r, binary.LittleEndian, v) }
	var ver, K, n uint32
	var trajs, accept int64
	for _, v := range []any{&ver, &K, &n, &trajs, &accept} {
		if err := rd(v); err != nil {
			return fmt.Errorf("HMC chain state: truncated header")
		}
	}
	if ver != chainsStateVersion || int(K) != h.cfg.Chains || int(n) != h.Size() {
		return fmt.Errorf("HMC chain state: version %d, %d chains of %d values; want version %d, %d chains of %d", ver, K, n, chainsStateVersion, h.cfg.Chains, h.Size())
	}
	hmc, src := make([]*lattice.HMC, K), make([]*rand.ChaCha8, K)
	for c := range int(K) {
		var eps float64
		var m uint32
		if err := rd(&eps); err != nil {
			return fmt.Errorf("HMC chain state: chain %d truncated", c)
		}
		if err := rd(&m); err != nil || m > 1<<16 {
			return fmt.Errorf("HMC chain state: chain %d: bad random state", c)
		}
		st := make([]byte, m)
		if _, err := r.Read(st); err != nil && m > 0 {
			return fmt.Errorf("HMC chain state: chain %d truncated", c)
		}
		src[c] = new(rand.ChaCha8)
		if err := src[c].UnmarshalBinary(st); err != nil {
			return fmt.Errorf("HMC chain state: chain %d: %w", c, err)
		}
		phi := make([]float64, n)
		if err := rd(phi); err != nil {
			return fmt.Errorf("HMC chain state: chain %d: field truncated", c)
		}
		if hmc[c], err = lattice.NewHMC(h.act, rand.New(src[c]), phi, eps); err != nil {
			return fmt.Errorf("HMC chain state: chain %d: %w", c, err)
		}
	}
	if r.Len() != 0 {
		return fmt.Errorf("HMC chain state: %d trailing bytes", r.Len())
	}
	h.hmc, h.src, h.ready, h.trajs, h.accept = hmc, src, true, trajs, accept
	return nil
}
