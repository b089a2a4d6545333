package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// driver evaluates the score in mode coordinates for a batch held in mode coordinates.
type driver struct {
	sde   SDE
	score Score
	lat   Basis
	n     int       // fields in the batch
	x, s  []float64 // position-space scratch, n·V
	a, b  []float64 // coefficients, V
	nfe   int
}

func newDriver(sde SDE, score Score, batch []float64) (*driver, error) {
	l := BasisOf(sde)
	V := l.Size()
	if len(batch) == 0 || len(batch)%V != 0 {
		return nil, fmt.Errorf("diffusion: %s: batch of length %d, want a positive multiple of V=%d", sde.Name(), len(batch), V)
	}
	return &driver{sde: sde, score: score, lat: l, n: len(batch) / V, x: make([]float64, len(batch)),
		s: make([]float64, len(batch)), a: make([]float64, V), b: make([]float64, V)}, nil
}

// scoreModes writes the score of the batch u (mode coordinates) at time t into dst (mode coordinates).
func (d *driver) scoreModes(t float64, u, dst []float64) error {
	if ms, ok := d.score.(ModeScore); ok {
		d.nfe++
		if err := ms.ScoreModes(t, u, dst); err != nil {
			return fmt.Errorf("diffusion: score at t=%v: %w", t, err)
		}
		return nil
	}
	V := d.lat.Size()
	for i := 0; i < len(u); i += V {
		d.lat.FromModes(d.x[i:i+V], u[i:i+V])
	}
	d.nfe++
	if err := d.score.Score(t, d.x, d.s); err != nil {
		return fmt.Errorf("diffusion: score at t=%v: %w", t, err)
	}
	for i := 0; i < len(u); i += V {
		d.lat.ToModes(dst[i:i+V], d.s[i:i+V])
	}
	return nil
}

// odeDrift writes the probability-flow drift a u − ½ b² s at time t into dst (mode coordinates).
func (d *driver) odeDrift(t float64, u, dst []float64) error {
	if err := d.sde.Coefficients(t, d.a, d.b); err != nil {
		return err
	}
	if err := d.scoreModes(t, u, dst); err != nil {
		return err
	}
	V := d.lat.Size()
	for i := range dst {
		j := i % V
		dst[i] = d.a[j]*u[i] - 0.5*d.b[j]*d.b[j]*dst[i]
	}
	return nil
}

func toModes(l Basis, x []float64) []float64 {
	V := l.Size()
	u := make([]float64, len(x))
	for i := 0; i < len(x); i += V {
		l.ToModes(u[i:i+V], x[i:i+V])
	}
	return u
}

func fromModes(l Basis, dst, u []float64) {
	V := l.Size()
	for i := 0; i < len(u); i += V {
		l.FromModes(dst[i:i+V], u[i:i+V])
	}
}

func checkSteps(name string, steps int, tEnd, T float64) error {
	if steps < 1 {
		return fmt.Errorf("diffusion: %s: steps=%d, want ≥ 1", name, steps)
	}
	if !(tEnd >= 0 && tEnd < T) {
		return fmt.Errorf("diffusion: %s: tEnd=%v outside [0, %v) (the start time)", name, tEnd, T)
	}
	return nil
}

// EulerMaruyama integrates the reverse SDE from T down to tEnd in steps equal steps. x holds the batch
// drawn from the prior at T on entry and the samples at tEnd on return. It returns the number of score
// evaluations.
func EulerMaruyama(sde SDE, score Score, x []float64, steps int, tEnd float64, rng *rand.Rand) (nfe int, err error) {
	return PredictorCorrector(sde, score, x, steps, tEnd, 0, 0, rng)
}

// PredictorCorrector is the reverse-SDE Euler–Maruyama predictor with corrections Langevin steps at every
// time before the predictor step (none: plain Euler–Maruyama). The Langevin step size is
// ε = 2 (snr ‖ξ‖ / ‖s‖)² per field, with ξ the step's noise, as in Song et al.
func PredictorCorrector(sde SDE, score Score, x []float64, steps int, tEnd, snr float64, corrections int, rng *rand.Rand) (nfe int, err error) {
	return ReverseSDE(sde, score, x, sde.T(), tEnd, steps, snr, corrections, rng)
}

// ReverseSDE is PredictorCorrector from t0 down to tEnd < t0 (x holds the batch at t0 on entry): a
// reverse trajectory can be run piece by piece and recorded in between.
func ReverseSDE(sde SDE, score Score, x []float64, t0, tEnd float64, steps int, snr float64, corrections int, rng *rand.Rand) (nfe int, err error) {
	d, err := newDriver(sde, score, x)
	if err != nil {
		return 0, err
	}
	if err := checkTime(sde.Name(), t0, sde.T()); err != nil {
		return 0, err
	}
	if err := checkSteps("predictor-corrector", steps, tEnd, t0); err != nil {
		return 0, err
	}
	if corrections < 0 || (corrections > 0 && !(snr > 0)) {
		return 0, fmt.Errorf("diffusion: predictor-corrector: corrections=%d, snr=%v, want corrections ≥ 0 and snr > 0", corrections, snr)
	}
	l := d.lat
	V := l.Size()
	u := toModes(l, x)
	s := make([]float64, len(u))
	xi := make([]float64, len(u))
	dt := (t0 - tEnd) / float64(steps)
	for n := range steps {
		t := t0 - float64(n)*dt
		for range corrections {
			if err := d.scoreModes(t, u, s); err != nil {
				return d.nfe, err
			}
			for i := 0; i < len(u); i += V {
				var nz, ns float64
				for j := i; j < i+V; j++ {
					xi[j] = rng.NormFloat64()
					nz += xi[j] * xi[j]
					ns += s[j] * s[j]
				}
				r := snr * math.Sqrt(nz/ns)
				eps := 2 * r * r
				for j := i; j < i+V; j++ {
					u[j] += eps*s[j] + math.Sqrt(2*eps)*xi[j]
				}
			}
		}
		if err := sde.Coefficients(t, d.a, d.b); err != nil {
			return d.nfe, err
		}
		if err := d.scoreModes(t, u, s); err != nil {
			return d.nfe, err
		}
		sq := math.Sqrt(dt)
		for i := range u {
			j := i % V
			b := d.b[j]
			u[i] += -(d.a[j]*u[i]-b*b*s[i])*dt + b*sq*rng.NormFloat64()
		}
	}
	fromModes(l, x, u)
	return d.nfe, nil
}

// ProbabilityFlowRK4 integrates the probability-flow ODE from t0 to t1 (either direction) with steps
// classical Runge–Kutta steps; x holds the batch at t0 on entry and at t1 on return.
func ProbabilityFlowRK4(sde SDE, score Score, x []float64, t0, t1 float64, steps int) (nfe int, err error) {
	d, err := newDriver(sde, score, x)
	if err != nil {
		return 0, err
	}
	if err := checkODE(sde, t0, t1); err != nil {
		return 0, err
	}
	if steps < 1 {
		return 0, fmt.Errorf("diffusion: probability flow RK4: steps=%d, want ≥ 1", steps)
	}
	u := toModes(d.lat, x)
	f := func(t float64, y, dy []float64) error { return d.odeDrift(t, y, dy) }
	if err := rk4(f, u, t0, t1, steps); err != nil {
		return d.nfe, err
	}
	fromModes(d.lat, x, u)
	return d.nfe, nil
}

// ProbabilityFlowRK45 integrates the probability-flow ODE from t0 to t1 with the adaptive Dormand–Prince
// 5(4) pair; the step is accepted when the RMS of err_i / (atol + rtol·max(|y_i|, |y'_i|)) is ≤ 1.
func ProbabilityFlowRK45(sde SDE, score Score, x []float64, t0, t1, rtol, atol float64) (nfe int, err error) {
	d, err := newDriver(sde, score, x)
	if err != nil {
		return 0, err
	}
	if err := checkODE(sde, t0, t1); err != nil {
		return 0, err
	}
	if !(rtol > 0 && atol > 0) {
		return 0, fmt.Errorf("diffusion: probability flow RK45: rtol=%v, atol=%v, want both > 0", rtol, atol)
	}
	u := toModes(d.lat, x)
	f := func(t float64, y, dy []float64) error { return d.odeDrift(t, y, dy) }
	if err := rk45(f, u, t0, t1, rtol, atol); err != nil {
		return d.nfe, err
	}
	fromModes(d.lat, x, u)
	return d.nfe, nil
}

func checkODE(sde SDE, t0, t1 float64) error {
	if err := checkTime(sde.Name(), t0, sde.T()); err != nil {
		return err
	}
	if err := checkTime(sde.Name(), t1, sde.T()); err != nil {
		return err
	}
	if t0 == t1 {
		return fmt.Errorf("diffusion: %s: probability flow from t0=%v to t1=%v is empty", sde.Name(), t0, t1)
	}
	return nil
}

type odeFunc func(t float64, y, dy []float64) error

func rk4(f odeFunc, y []float64, t0, t1 float64, steps int) error {
	n := len(y)
	k1, k2, k3, k4, tmp := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	h := (t1 - t0) / float64(steps)
	for s := range steps {
		t := t0 + float64(s)*h
		if s == steps-1 {
			h = t1 - t // land exactly on t1
		}
		if err := f(t, y, k1); err != nil {
			return err
		}
		for i := range y {
			tmp[i] = y[i] + 0.5*h*k1[i]
		}
		if err := f(t+0.5*h, tmp, k2); err != nil {
			return err
		}
		for i := range y {
			tmp[i] = y[i] + 0.5*h*k2[i]
		}
		if err := f(t+0.5*h, tmp, k3); err != nil {
			return err
		}
		for i := range y {
			tmp[i] = y[i] + h*k3[i]
		}
		if err := f(t+h, tmp, k4); err != nil {
			return err
		}
		for i := range y {
			y[i] += h / 6 * (k1[i] + 2*k2[i] + 2*k3[i] + k4[i])
		}
	}
	return nil
}

// Dormand–Prince 5(4) tableau.
var (
	dpC = [7]float64{0, 1. / 5, 3. / 10, 4. / 5, 8. / 9, 1, 1}
	dpA = [7][6]float64{
		{},
		{1. / 5},
		{3. / 40, 9. / 40},
		{44. / 45, -56. / 15, 32. / 9},
		{19372. / 6561, -25360. / 2187, 64448. / 6561, -212. / 729},
		{9017. / 3168, -355. / 33, 46732. / 5247, 49. / 176, -5103. / 18656},
		{35. / 384, 0, 500. / 1113, 125. / 192, -2187. / 6784, 11. / 84},
	}
	dpB5 = [7]float64{35. / 384, 0, 500. / 1113, 125. / 192, -2187. / 6784, 11. / 84, 0}
	dpB4 = [7]float64{5179. / 57600, 0, 7571. / 16695, 393. / 640, -92097. / 339200, 187. / 2100, 1. / 40}
)

// rk45 integrates with Dormand–Prince, first-same-as-last, step control with safety 0.9 and step ratios
// in [0.2, 5]. It fails after 100000 steps or when the step underflows.
func rk45(f odeFunc, y []float64, t0, t1, rtol, atol float64) error {
	n := len(y)
	var k [7][]float64
	for i := range k {
		k[i] = make([]float64, n)
	}
	tmp, y5 := make([]float64, n), make([]float64, n)
	dir := math.Copysign(1, t1-t0)
	h := 0.01 * (t1 - t0)
	t := t0
	if err := f(t, y, k[0]); err != nil {
		return err
	}
	for steps := 0; dir*(t1-t) > 0; steps++ {
		if steps > 100000 || math.Abs(h) < 1e-12*math.Abs(t1-t0) {
			return fmt.Errorf("diffusion: RK45: step size %v at t=%v after %d steps (stiff or rtol too small)", h, t, steps)
		}
		if dir*(t+h-t1) > 0 {
			h = t1 - t
		}
		for s := 1; s < 7; s++ {
			for i := range y {
				acc := y[i]
				for r := range s {
					acc += h * dpA[s][r] * k[r][i]
				}
				tmp[i] = acc
			}
			if err := f(t+dpC[s]*h, tmp, k[s]); err != nil {
				return err
			}
		}
		// tmp is now the 5th-order solution (the last stage is evaluated at it: FSAL).
		var e2 float64
		for i := range y {
			var e float64
			for s := range 7 {
				e += (dpB5[s] - dpB4[s]) * k[s][i]
			}
			e *= h
			sc := atol + rtol*math.Max(math.Abs(y[i]), math.Abs(tmp[i]))
			e2 += (e / sc) * (e / sc)
		}
		errNorm := math.Sqrt(e2 / float64(n))
		if errNorm <= 1 {
			t += h
			copy(y5, tmp)
			copy(y, y5)
			k[0], k[6] = k[6], k[0]
		}
		fac := 5.0
		if errNorm > 0 {
			fac = math.Min(5, math.Max(0.2, 0.9*math.Pow(errNorm, -0.2)))
		}
		h *= fac
	}
	return nil
}
