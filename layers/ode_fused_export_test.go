package layers

import G "gorgonia.org/gorgonia"

// FusedODENodes builds the fused integration of o (a whole-lattice KernelField) from t0 to t1 on x with
// the kernel parameter given as a node (K, C, F·C, P), so that tests can differentiate with respect to it
// like any input. kin is nil unless kinetic.
func FusedODENodes(o ODE, x, w *G.Node, t0, t1 float64, kinetic bool) (xe, ld, kin *G.Node, err error) {
	p, err := o.fusedPlan(x, t0, t1, kinetic)
	if err != nil {
		return nil, nil, nil, err
	}
	return fusedNodes(p, x, w)
}
