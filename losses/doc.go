// Package losses holds rgflow's objectives (train.Objective implementations) and the estimators that go
// with them.
//
// Conventions: every loss is a mean over the batch of per-sample terms, in nats. For the reverse
// KL on a lattice action, loss = mean_b [log q(x_b) + S(x_b)] ≥ −ln Z with x_b = F⁻¹(z_b), z_b drawn from
// the prior; the gap loss + ln Z is KL(q‖p). Importance weights are log w = −S(x) − log q(x), and
// ln Z ≈ log mean exp(log w).
package losses
