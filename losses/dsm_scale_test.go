package losses

import (
	"testing"

	"rgflow/models/diffusion"
)

// The batch draw computes a CNN score's scale c(t) from the transition it already has: it must be the
// network's own Scale(t), bit for bit (a resumed run draws the same batches), for the heat flow and the
// Polchinski flow, at the ends of the time range and inside it.
func TestDSMScaleMatchesNetwork(t *testing.T) {
	lat, err := diffusion.NewLattice(6)
	if err != nil {
		t.Fatal(err)
	}
	v0, err := lat.FreeVariance(0.7)
	if err != nil {
		t.Fatal(err)
	}
	car, err := diffusion.NewCarosso(lat, 1.5, 0.5, 2)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := diffusion.NewPolchinski(lat, diffusion.MassRegulator{Mu2: 0.3}, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, sde := range []diffusion.SDE{car, pol} {
		net, err := diffusion.NewCNNScore(sde, 1, 4, 1, false, v0)
		if err != nil {
			t.Fatal(err)
		}
		d := &DSM{Net: net}
		m, q := make([]float64, lat.V), make([]float64, lat.V)
		for _, tt := range []float64{0.02, 0.3, 1, 1.7, sde.T()} {
			if err := sde.Transition(0, tt, m, q); err != nil {
				t.Fatal(err)
			}
			got, err := d.scale(tt, m, q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := net.Scale(tt)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s t=%g: scale %.17g, network's Scale %.17g", sde.Name(), tt, got, want)
			}
		}
	}
}
