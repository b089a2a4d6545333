package bulk

import (
	"fmt"
	"math"
	"sort"
)

// Bin is one bin of a two-point function: pairs of sites both at RG level Level (−1 when levels are not
// distinguished, e.g. the boundary correlator) at periodic Euclidean distance R.
type Bin struct {
	Level int     `json:"level"`
	R     float64 `json:"r"`
	Pairs int     `json:"pairs"` // unordered site pairs (i ≤ j) in the bin, per channel
	Corr  float64 `json:"corr"`  // mean of ⟨z_i z_j⟩ over the bin's pairs and channels
	Err   float64 `json:"err"`   // standard error from batch means
}

// distance is the periodic Euclidean distance of sites a and b on an L×L grid.
func distance(a, b, L int) float64 {
	dx := abs(a/L - b/L)
	dy := abs(a%L - b%L)
	dx = min(dx, L-dx)
	dy = min(dy, L-dy)
	return math.Sqrt(float64(dx*dx + dy*dy))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Correlations bins ⟨v_i v_j⟩ of samples by RG level and separation. samples[c] holds chain c's
// measurements back to back, each C·L·L values (channel-major); only pairs of the same channel count.
// levels gives each site's level (length L·L), or nil to put every pair in one level −1 (the boundary
// correlator G(r)). Each chain is cut into batches consecutive measurements; the error of a bin is the
// standard error of its batch means over all chains' batches, valid when a batch is much longer than
// the integrated autocorrelation time.
func Correlations(samples [][]float64, C, L int, levels []int, batches int) ([]Bin, error) {
	n := C * L * L
	if levels != nil && len(levels) != L*L {
		return nil, fmt.Errorf("bulk: Correlations: level map of %d sites, want %d", len(levels), L*L)
	}
	if batches < 2 {
		return nil, fmt.Errorf("bulk: Correlations: %d batches per chain, want ≥ 2", batches)
	}
	type key struct {
		level int
		r2    int
	}
	// Bin index of every pair (i ≤ j) of sites.
	idx := map[key]int{}
	var keys []key
	pairBin := make([]int32, L*L*L*L)
	for i := 0; i < L*L; i++ {
		for j := 0; j < L*L; j++ {
			pairBin[i*L*L+j] = -1
			if j < i {
				continue
			}
			lv := -1
			if levels != nil {
				if levels[i] != levels[j] {
					continue
				}
				lv = levels[i]
			}
			d := distance(i, j, L)
			k := key{lv, int(math.Round(d * d))}
			b, ok := idx[k]
			if !ok {
				b = len(keys)
				idx[k] = b
				keys = append(keys, k)
			}
			pairBin[i*L*L+j] = int32(b)
		}
	}
	nb := len(keys)
	pairs := make([]int, nb)
	for _, b := range pairBin {
		if b >= 0 {
			pairs[b]++
		}
	}
	var means [][]float64 // per batch, per bin
	for c, s := range samples {
		if len(s)%n != 0 {
			return nil, fmt.Errorf("bulk: Correlations: chain %d has %d values, not a multiple of C·L·L = %d", c, len(s), n)
		}
		m := len(s) / n
		if m < batches {
			return nil, fmt.Errorf("bulk: Correlations: chain %d has %d measurements for %d batches", c, m, batches)
		}
		per := m / batches
		for bt := 0; bt < batches; bt++ {
			acc := make([]float64, nb)
			for t := bt * per; t < (bt+1)*per; t++ {
				v := s[t*n : (t+1)*n]
				for ch := 0; ch < C; ch++ {
					w := v[ch*L*L : (ch+1)*L*L]
					for i, vi := range w {
						row := pairBin[i*L*L : (i+1)*L*L]
						for j := i; j < L*L; j++ {
							if b := row[j]; b >= 0 {
								acc[b] += vi * w[j]
							}
						}
					}
				}
			}
			for b := range acc {
				acc[b] /= float64(per * C * pairs[b])
			}
			means = append(means, acc)
		}
	}
	if len(means) < 2 {
		return nil, fmt.Errorf("bulk: Correlations: no samples")
	}
	out := make([]Bin, nb)
	nm := float64(len(means))
	for b, k := range keys {
		var s, s2 float64
		for _, m := range means {
			s += m[b]
			s2 += m[b] * m[b]
		}
		mu := s / nm
		out[b] = Bin{Level: k.level, R: math.Sqrt(float64(k.r2)), Pairs: pairs[b], Corr: mu,
			Err: math.Sqrt(math.Max(s2/nm-mu*mu, 0) / (nm - 1))}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Level != out[j].Level {
			return out[i].Level < out[j].Level
		}
		return out[i].R < out[j].R
	})
	return out, nil
}

// Fit is a least-squares line y = A + B·x with its coefficient of determination.
type Fit struct {
	A  float64 `json:"a"`
	B  float64 `json:"b"`
	R2 float64 `json:"r2"`
	N  int     `json:"n"` // points fitted
}

// LineFit fits y = A + B·x by ordinary least squares. It needs two distinct x.
func LineFit(x, y []float64) (Fit, error) {
	if len(x) != len(y) || len(x) < 2 {
		return Fit{}, fmt.Errorf("bulk: LineFit: %d x and %d y values, want ≥ 2 of each", len(x), len(y))
	}
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= n
	my /= n
	var sxx, sxy, syy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 {
		return Fit{}, fmt.Errorf("bulk: LineFit: all x equal")
	}
	b := sxy / sxx
	f := Fit{A: my - b*mx, B: b, N: len(x), R2: 1}
	if syy > 0 {
		f.R2 = sxy * sxy / (sxx * syy)
	}
	return f, nil
}

// Holo is the holographic distance of one bin: d = −ln|⟨z_i z_j⟩| (d₀ = 0, ξ = 1).
type Holo struct {
	Bin
	D    float64 `json:"d"`
	DErr float64 `json:"d_err"` // |δC / C|
}

// HoloFit converts the bins with r ≥ 1 whose correlation is resolved (|C| > minSigma·δC) into holographic
// distances d = −ln|C| and fits d = a + b ln r over all of them and per level. Bins whose correlation is
// not resolved carry no distance and are left out of the fits.
func HoloFit(bins []Bin, minSigma float64) (pts []Holo, all Fit, perLevel map[int]Fit, err error) {
	var x, y []float64
	lx, ly := map[int][]float64{}, map[int][]float64{}
	for _, b := range bins {
		if b.R < 1 || !(math.Abs(b.Corr) > minSigma*b.Err) || b.Corr == 0 {
			continue
		}
		h := Holo{Bin: b, D: -math.Log(math.Abs(b.Corr)), DErr: b.Err / math.Abs(b.Corr)}
		pts = append(pts, h)
		x = append(x, math.Log(b.R))
		y = append(y, h.D)
		lx[b.Level] = append(lx[b.Level], math.Log(b.R))
		ly[b.Level] = append(ly[b.Level], h.D)
	}
	all, err = LineFit(x, y)
	if err != nil {
		return pts, all, nil, fmt.Errorf("bulk: holographic fit: %w", err)
	}
	perLevel = map[int]Fit{}
	for l := range lx {
		if f, err := LineFit(lx[l], ly[l]); err == nil {
			perLevel[l] = f
		}
	}
	return pts, all, perLevel, nil
}

// Center subtracts from every value its site's mean over all measurements of all chains (n values per
// measurement), in place, so that Correlations then estimates the connected ⟨v_i v_j⟩ − ⟨v_i⟩⟨v_j⟩. The
// batch-means errors afterwards ignore the uncertainty of the subtracted means (a relative O(1/N) effect).
func Center(samples [][]float64, n int) error {
	mean := make([]float64, n)
	count := 0
	for c, s := range samples {
		if len(s)%n != 0 {
			return fmt.Errorf("bulk: Center: chain %d has %d values, not a multiple of %d", c, len(s), n)
		}
		for i, v := range s {
			mean[i%n] += v
		}
		count += len(s) / n
	}
	if count == 0 {
		return fmt.Errorf("bulk: Center: no samples")
	}
	for i := range mean {
		mean[i] /= float64(count)
	}
	for _, s := range samples {
		for i := range s {
			s[i] -= mean[i%n]
		}
	}
	return nil
}
