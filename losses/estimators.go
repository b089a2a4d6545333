package losses

import "math"

// MeanStdErr is the sample mean and its standard error (sample standard deviation / √n) of independent
// values.
func MeanStdErr(v []float64) (mean, stdErr float64) {
	n := float64(len(v))
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= n
	if n < 2 {
		return mean, math.NaN()
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / (n - 1) / n)
}

// LogMeanExp is log((1/n) Σ exp(logw)) computed stably, with the delta-method standard error
// σ(ln Ẑ) ≈ sd(w)/(√n · mean(w)) for independent draws. This is the importance-sampling estimate of
// ln Z when logw = −S − log q; it is biased low by about σ²/2, which is negligible once σ ≪ 1.
func LogMeanExp(logw []float64) (value, stdErr float64) {
	n := float64(len(logw))
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	mx := math.Inf(-1)
	for _, x := range logw {
		mx = math.Max(mx, x)
	}
	if math.IsInf(mx, 0) {
		return mx, math.NaN()
	}
	var s, s2 float64
	for _, x := range logw {
		w := math.Exp(x - mx)
		s += w
		s2 += w * w
	}
	mean := s / n
	value = mx + math.Log(mean)
	if n < 2 {
		return value, math.NaN()
	}
	variance := (s2/n - mean*mean) * n / (n - 1)
	return value, math.Sqrt(math.Max(variance, 0)/n) / mean
}

// ESS is the effective sample size fraction (Σw)²/(n Σw²) of importance weights given as log w, in (0, 1].
func ESS(logw []float64) float64 {
	mx := math.Inf(-1)
	for _, x := range logw {
		mx = math.Max(mx, x)
	}
	if len(logw) == 0 || math.IsInf(mx, 0) || math.IsNaN(mx) {
		return math.NaN()
	}
	var s, s2 float64
	for _, x := range logw {
		w := math.Exp(x - mx)
		s += w
		s2 += w * w
	}
	return s * s / (float64(len(logw)) * s2)
}
