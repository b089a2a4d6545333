// Package losses holds rgflow's objectives (train.Objective implementations) and the estimators that go
// with them.
//
// Conventions: every loss is a mean over the batch of per-sample terms, in nats. For the reverse
// KL on a lattice action, loss = mean_b [log q(x_b) + S(x_b)] ≥ −ln Z with x_b = F⁻¹(z_b), z_b drawn from
// the prior; the gap loss + ln Z is KL(q‖p). Importance weights are log w = −S(x) − log q(x), and
// ln Z ≈ log mean exp(log w) (LogMeanExp, with a delta-method error), with the effective sample size
// fraction ESS = (Σw)²/(N Σw²).
//
// On 8-bit images (NLL, Preprocess): x̃ = (x + u)/256 with u ~ U[0, 1) (uniform dequantisation), y =
// logit(α + (1 − 2α) x̃) with α = 0.05, and log p(x̃) = log q(y) + log|dy/dx̃|, the model's density of the
// dequantised image in [0, 1)^D; bits/dim = (−log p(x̃)/D + ln 256)/ln 2, the code length of the 8-bit
// data per pixel and channel (D = C·L·L). With every coupling the identity (the flow at initialisation)
// the first 64 Fashion-MNIST training images padded to 32×32, u = ½ and T = 1 give 9.555760 bits/dim with
// the Laplace prior and 10.122061 with the Gaussian one (a test checks both).
package losses
