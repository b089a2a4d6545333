package lattice

import (
	"math"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Statistics of Markov-chain time series: errors that account for autocorrelation (blocked jackknife,
// τ_int), never a bare standard deviation.
//
// Data layout: a primary observable measured in R independent chains is a [][]float64 indexed
// [chain][t]; several primaries are [][][]float64 indexed [observable][chain][t]. All chains of one
// observable are treated as replicas of the same process (Wolff's "replica" setting): they share the
// ensemble mean and their autocorrelation functions are pooled; no correlation between chains is assumed.
//
// Times are in units of the series' spacing (one stored measurement). With thinning every k
// trajectories, multiply τ_int by k to get trajectories.
//
// Definitions (Madras & Sokal 1988; Wolff, Comput. Phys. Commun. 156 (2004) 143):
//
//	Γ(t)      = ⟨(a_i − ā)(a_{i+t} − ā)⟩, pooled over chains,  ρ(t) = Γ(t)/Γ(0)
//	τ_int(W)  = ½ + Σ_{t=1}^{W} ρ(t)      (τ_int = ½ for uncorrelated data)
//	σ²(ā)     = 2 τ_int Γ(0) / N            (N = total number of measurements)
//
// The window W is the smallest W ≥ 1 with W ≥ c·τ_int(W) (c = 6 by default), and Γ is corrected for the
// bias of subtracting the sample mean, Γ(t) → Γ(t) + C(W)/N with C(W) = Γ(0) + 2Σ_{t≤W}Γ(t) (Wolff 2004,
// eq. 49). The statistical error of τ_int is τ_int·√(2(2W+1)/N) (Madras–Sokal).

// DefaultWindowFactor is the c of the automatic window W ≥ c·τ_int(W).
const DefaultWindowFactor = 6.0

// minChainTaus is the shortest chain, in units of τ_int, whose τ_int estimate is called reliable: a
// shorter chain's mean subtraction and window truncation bias τ_int low.
const minChainTaus = 20

// Autocorr is the result of an integrated-autocorrelation-time analysis of one observable.
type Autocorr struct {
	Tau    float64 // τ_int (≥ ½ in the limit of long series; ½ for white noise)
	TauErr float64 // Madras–Sokal statistical error of Tau
	Window int     // summation window W (0 for a constant series)
	Var    float64 // Γ(0) after the bias correction: the variance of one measurement
	Mean   float64 // ensemble mean over all chains
	N      int     // number of measurements over all chains
	// Reliable is false when the window condition W ≥ c·τ_int(W) was not met before W reached half the
	// length of the shortest chain, or when the shortest chain is shorter than 20 τ_int: the run is too
	// short compared with τ_int and Tau is probably an underestimate.
	Reliable bool
}

// MeanErr is the standard error of the mean accounting for autocorrelations, √(2 τ_int Γ(0)/N).
func (a Autocorr) MeanErr() float64 {
	if a.N == 0 {
		return math.NaN()
	}
	if a.Var <= 0 {
		return 0
	}
	return math.Sqrt(2 * a.Tau * a.Var / float64(a.N))
}

// IntegratedAutocorr computes τ_int of the series x[chain][t] with the automatic window W ≥ c·τ_int(W);
// c ≤ 0 selects DefaultWindowFactor. Chains may have different lengths; empty chains are ignored.
func IntegratedAutocorr(x [][]float64, c float64) Autocorr {
	if c <= 0 {
		c = DefaultWindowFactor
	}
	n, minLen, chains := 0, math.MaxInt, 0
	sum := 0.0
	for _, ch := range x {
		if len(ch) == 0 {
			continue
		}
		chains++
		n += len(ch)
		minLen = min(minLen, len(ch))
		for _, v := range ch {
			sum += v
		}
	}
	if n == 0 {
		return Autocorr{Tau: math.NaN(), TauErr: math.NaN(), Var: math.NaN(), Mean: math.NaN()}
	}
	mean := sum / float64(n)
	out := Autocorr{Mean: mean, N: n, Tau: 0.5, Reliable: true}
	// gamma(t) pooled over chains: Σ_r Σ_i δ_i δ_{i+t} / (N − R t). The first directLags lags are summed
	// directly (O(N) each); a window beyond them switches to all lags at once by FFT (O(N log N)).
	var all []float64
	gamma := func(t int) float64 {
		if t <= directLags {
			return autocovDirect(x, mean, t)
		}
		if all == nil {
			all = autocovFFT(x, mean, minLen/2)
		}
		return all[t]
	}
	g0 := gamma(0)
	if !(g0 > 0) { // constant series (or NaN)
		out.Var = g0
		if math.IsNaN(g0) {
			out.Tau, out.TauErr = math.NaN(), math.NaN()
		}
		return out
	}
	gs := []float64{g0}
	maxW := minLen / 2
	if maxW < 1 {
		// A single measurement per chain: nothing to learn about correlations.
		out.Var = g0
		out.Reliable = chains > 1
		out.TauErr = math.NaN()
		return out
	}
	w := 0
	cSum := g0 // Γ(0) + 2 Σ_{t ≤ W} Γ(t), uncorrected
	for t := 1; t <= maxW; t++ {
		g := gamma(t)
		gs = append(gs, g)
		cSum += 2 * g
		w = t
		if float64(t) >= c*cSum/(2*g0) {
			break
		}
		if t == maxW {
			out.Reliable = false
		}
	}
	// Bias correction for the subtracted mean (Wolff 2004, eq. 49): Γ(t) += C(W)/N for all t.
	corr := cSum / float64(n)
	g0c := g0 + corr
	cc := g0c
	for t := 1; t <= w; t++ {
		cc += 2 * (gs[t] + corr)
	}
	tau := cc / (2 * g0c)
	if float64(minLen) < minChainTaus*tau {
		out.Reliable = false
	}
	out.Var = g0c
	out.Window = w
	out.Tau = tau
	out.TauErr = tau * math.Sqrt(2*float64(2*w+1)/float64(n))
	return out
}

// directLags is the number of lags IntegratedAutocorr sums directly before switching to an FFT.
const directLags = 64

// autocovDirect is Γ(t) = Σ_r Σ_i δ_i δ_{i+t} / (N − R t) pooled over the chains of x, δ = x − mean.
func autocovDirect(x [][]float64, mean float64, t int) float64 {
	s, cnt := 0.0, 0
	for _, ch := range x {
		if len(ch) <= t {
			continue
		}
		for i := 0; i+t < len(ch); i++ {
			s += (ch[i] - mean) * (ch[i+t] - mean)
		}
		cnt += len(ch) - t
	}
	if cnt == 0 {
		return 0
	}
	return s / float64(cnt)
}

// autocovFFT returns Γ(0 … maxT) as autocovDirect does, computing each chain's lag sums with one
// zero-padded real FFT (Wiener–Khinchin).
func autocovFFT(x [][]float64, mean float64, maxT int) []float64 {
	sums := make([]float64, maxT+1)
	cnt := make([]int, maxT+1)
	var fft *fourier.FFT
	var buf []float64
	var coef []complex128
	for _, ch := range x {
		n := len(ch)
		if n == 0 {
			continue
		}
		m := 1
		for m < 2*n {
			m *= 2
		}
		if fft == nil || fft.Len() != m {
			fft = fourier.NewFFT(m)
			buf = make([]float64, m)
			coef = make([]complex128, m/2+1)
		}
		clear(buf)
		for i, v := range ch {
			buf[i] = v - mean
		}
		fft.Coefficients(coef, buf)
		for k, c := range coef {
			coef[k] = complex(real(c)*real(c)+imag(c)*imag(c), 0)
		}
		fft.Sequence(buf, coef) // Σ_i δ_i δ_{i+t} · m, no wrap-around thanks to the padding
		for t := 0; t <= maxT && t < n; t++ {
			sums[t] += buf[t] / float64(m)
			cnt[t] += n - t
		}
	}
	for t := range sums {
		if cnt[t] > 0 {
			sums[t] /= float64(cnt[t])
		}
	}
	return sums
}

// Binning is one level of a binning (blocking) analysis.
type Binning struct {
	Size   int     // bin length in measurements
	Bins   int     // number of bins over all chains
	Err    float64 // naive standard error of the mean computed from the bin means
	TauEff float64 // ½ (Err/Err₁)²: approaches τ_int once Size ≫ τ_int
}

// BinningAnalysis returns the error of the mean computed from bins of length 1, 2, 4, … (bins never
// straddle chains; the last incomplete bin of each chain is dropped), down to at least minBins bins
// (minBins ≤ 0 selects 16). The plateau of Err against Size is the error; TauEff estimates τ_int.
func BinningAnalysis(x [][]float64, minBins int) []Binning {
	if minBins <= 0 {
		minBins = 16
	}
	var out []Binning
	var err1 float64
	for size := 1; ; size *= 2 {
		var means []float64
		for _, ch := range x {
			for b := 0; (b+1)*size <= len(ch); b++ {
				s := 0.0
				for _, v := range ch[b*size : (b+1)*size] {
					s += v
				}
				means = append(means, s/float64(size))
			}
		}
		if len(means) < minBins {
			break
		}
		_, v := meanVar(means)
		e := math.Sqrt(v / float64(len(means)))
		if size == 1 {
			err1 = e
		}
		te := math.NaN()
		if err1 > 0 {
			te = 0.5 * (e / err1) * (e / err1)
		}
		out = append(out, Binning{Size: size, Bins: len(means), Err: e, TauEff: te})
	}
	return out
}

// meanVar returns the mean and the unbiased sample variance of x.
func meanVar(x []float64) (mean, variance float64) {
	if len(x) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, math.NaN()
	}
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= float64(len(x) - 1)
	return mean, variance
}

// Jackknife estimates f(⟨a₁⟩, …, ⟨a_k⟩) and its standard error by the delete-one-block jackknife.
// data is [observable][chain][t]; every observable must have the same chain lengths. Each chain is cut
// into blocks of block measurements (the incomplete last block of a chain is dropped); blocks of
// different chains are independent. value is f at the means of all data used; err² = (B−1)/B Σ_b
// (f_b − f̄)² over the B leave-one-block-out estimates f_b. With block ≫ τ_int the error accounts for
// the autocorrelations (the variance is underestimated by a relative amount ≈ τ_int/block).
func Jackknife(data [][][]float64, block int, f func(means []float64) float64) (value, err float64, blocks int) {
	if block < 1 {
		block = 1
	}
	k := len(data)
	if k == 0 {
		return f(nil), math.NaN(), 0
	}
	// Block sums: bs[obs][b].
	bs := make([][]float64, k)
	for o := range data {
		for _, ch := range data[o] {
			nb := len(ch) / block
			for b := 0; b < nb; b++ {
				s := 0.0
				for _, v := range ch[b*block : (b+1)*block] {
					s += v
				}
				bs[o] = append(bs[o], s)
			}
		}
	}
	blocks = len(bs[0])
	for o := range bs {
		if len(bs[o]) != blocks {
			panic("lattice: Jackknife: observables have different chain lengths")
		}
	}
	if blocks == 0 {
		return math.NaN(), math.NaN(), 0
	}
	tot := make([]float64, k)
	for o := range bs {
		for _, s := range bs[o] {
			tot[o] += s
		}
	}
	n := float64(blocks * block)
	means := make([]float64, k)
	for o := range tot {
		means[o] = tot[o] / n
	}
	value = f(means)
	if blocks < 2 {
		return value, math.NaN(), blocks
	}
	fb := make([]float64, blocks)
	for b := range blocks {
		for o := range tot {
			means[o] = (tot[o] - bs[o][b]) / (n - float64(block))
		}
		fb[b] = f(means)
	}
	fm := 0.0
	for _, v := range fb {
		fm += v
	}
	fm /= float64(blocks)
	ss := 0.0
	for _, v := range fb {
		ss += (v - fm) * (v - fm)
	}
	return value, math.Sqrt(ss * float64(blocks-1) / float64(blocks)), blocks
}

// StatsOptions tunes Analyze. The zero value is the documented default.
type StatsOptions struct {
	// WindowFactor is c in the automatic window W ≥ c·τ_int(W); zero → DefaultWindowFactor (6).
	WindowFactor float64
	// BlockTaus sets the jackknife block length to ⌈BlockTaus·τ_int⌉ measurements; zero → 20, which
	// underestimates the variance by ≈ 1/BlockTaus = 5% for exponentially decaying autocorrelations.
	BlockTaus float64
	// MinBlocks is the smallest number of jackknife blocks over all chains; the block length is shortened
	// (and Estimate.ShortRun set) when the run is too short for BlockTaus·τ_int. Zero → 20.
	MinBlocks int
}

func (o StatsOptions) withDefaults() StatsOptions {
	if o.WindowFactor <= 0 {
		o.WindowFactor = DefaultWindowFactor
	}
	if o.BlockTaus <= 0 {
		o.BlockTaus = 20
	}
	if o.MinBlocks <= 0 {
		o.MinBlocks = 20
	}
	return o
}

// Estimate is an ensemble estimate of a function of means with its error and autocorrelation time.
type Estimate struct {
	Value float64 // f at the ensemble means of all the data
	Err   float64 // blocked-jackknife standard error (block length Block, chosen from Tau)
	// ErrGamma is Wolff's Γ-method error √(2 τ_int Γ_f(0)/N) of the linearised series; it agrees with Err
	// within their own errors and is reported as a cross-check.
	ErrGamma float64
	Tau      float64 // τ_int of f's linearised series Σ_α ∂f/∂ā_α a_α(t), in measurements
	TauErr   float64
	Window   int
	Block    int // jackknife block length in measurements
	Blocks   int // number of jackknife blocks over all chains
	// ShortRun is true when the run is too short for a reliable error: the window condition failed or the
	// block length had to be shortened below BlockTaus·τ_int.
	ShortRun bool
}

// Analyze estimates f(⟨a₁⟩, …, ⟨a_k⟩) from data[observable][chain][t]: τ_int from the linearised series
// (Wolff's Γ-method; the gradient of f is taken by central differences at the means), the error from a
// blocked jackknife whose block length is ⌈BlockTaus·τ_int⌉. All chains must have equal length.
func Analyze(data [][][]float64, f func(means []float64) float64, opt StatsOptions) Estimate {
	opt = opt.withDefaults()
	k := len(data)
	var est Estimate
	if k == 0 || len(data[0]) == 0 {
		return Estimate{Value: math.NaN(), Err: math.NaN(), ErrGamma: math.NaN(), Tau: math.NaN(), TauErr: math.NaN()}
	}
	chains := len(data[0])
	chainLen := len(data[0][0])
	for o := range data {
		if len(data[o]) != chains {
			panic("lattice: Analyze: observables have different numbers of chains")
		}
		for _, ch := range data[o] {
			if len(ch) != chainLen {
				panic("lattice: Analyze: chains have different lengths")
			}
		}
	}
	n := chains * chainLen
	means := make([]float64, k)
	sds := make([]float64, k)
	for o := range data {
		s, s2 := 0.0, 0.0
		for _, ch := range data[o] {
			for _, v := range ch {
				s += v
			}
		}
		means[o] = s / float64(n)
		for _, ch := range data[o] {
			for _, v := range ch {
				s2 += (v - means[o]) * (v - means[o])
			}
		}
		sds[o] = math.Sqrt(s2 / float64(n))
	}
	// Gradient of f by central differences, step scaled to the spread of each observable.
	grad := make([]float64, k)
	tmp := make([]float64, k)
	for o := range grad {
		h := 1e-5 * (sds[o] + math.Abs(means[o]))
		if h == 0 {
			continue
		}
		copy(tmp, means)
		tmp[o] = means[o] + h
		fp := f(tmp)
		tmp[o] = means[o] - h
		fm := f(tmp)
		grad[o] = (fp - fm) / (2 * h)
	}
	lin := make([][]float64, chains)
	finite := true
	for _, g := range grad {
		if math.IsNaN(g) || math.IsInf(g, 0) {
			finite = false
		}
	}
	var ac Autocorr
	if finite {
		for r := range lin {
			lin[r] = make([]float64, chainLen)
			for t := range lin[r] {
				s := 0.0
				for o := range data {
					s += grad[o] * data[o][r][t]
				}
				lin[r][t] = s
			}
		}
		ac = IntegratedAutocorr(lin, opt.WindowFactor)
		est.Tau, est.TauErr, est.Window = ac.Tau, ac.TauErr, ac.Window
		est.ErrGamma = ac.MeanErr()
		est.ShortRun = !ac.Reliable
	} else {
		// f is not differentiable at the means (e.g. m_R² undefined): take the largest τ_int of the
		// primaries for the blocking and report no Γ-method error.
		est.Tau, est.TauErr, est.ErrGamma = math.NaN(), math.NaN(), math.NaN()
		for o := range data {
			a := IntegratedAutocorr(data[o], opt.WindowFactor)
			if !(a.Tau <= est.Tau) { // also replaces NaN
				est.Tau, est.TauErr, est.Window = a.Tau, a.TauErr, a.Window
			}
			est.ShortRun = est.ShortRun || !a.Reliable
		}
	}
	tauB := est.Tau
	if math.IsNaN(tauB) || tauB < 0.5 {
		tauB = 0.5
	}
	block := int(math.Ceil(opt.BlockTaus * tauB))
	if maxBlock := n / opt.MinBlocks; block > maxBlock {
		block = max(1, maxBlock)
		est.ShortRun = true
	}
	if block > chainLen {
		block = chainLen
		est.ShortRun = true
	}
	est.Block = block
	_, est.Err, est.Blocks = Jackknife(data, block, f)
	est.Value = f(means) // all the data, whatever the blocking dropped
	return est
}
