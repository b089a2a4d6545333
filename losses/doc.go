// Package losses holds rgflow's objectives (train.Objective implementations) and the estimators that go
// with them.
//
// Conventions: every loss is a mean over the batch of per-sample terms, in nats. For the reverse
// KL on a lattice action, loss = mean_b [log q(x_b) + S(x_b)] ≥ −ln Z with x_b = F⁻¹(z_b), z_b drawn from
// the prior; the gap loss + ln Z is KL(q‖p). Importance weights are log w = −S(x) − log q(x), and
// ln Z ≈ log mean exp(log w) (LogMeanExp, with a delta-method error), with the effective sample size
// fraction ESS = (Σw)²/(N Σw²).
//
// Images (NLL, Preprocess): x̃ = (x + u)/256 with u ~ U[0, 1) (uniform dequantisation), y =
// logit(α + (1 − 2α) x̃) with α = 0.05, and ln p(x̃) = ln q(y) + ln|dy/dx̃|, the model's density of the
// dequantised image in [0, 1)^D. With every coupling the identity (the flow at initialisation), the first
// 64 Fashion-MNIST training images padded to 32×32, u = ½ and T = 1 give 9.555760 bits per canvas value
// with the Laplace prior and 10.122061 with the Gaussian one (a test checks both).
//
// Bits per dimension on images. For 8-bit images of D = C·L·L values the code length of an image x is
// (−ln p(x̃) + D ln 256)/ln 2 bits, where p(x̃) is the model's density of the dequantised image (see
// Preprocess); bits/dim divides it by a number of dimensions. Images smaller than the model (28×28 in a
// 32×32 canvas) are padded with zeros that are the same in every image: they carry no information, yet
// the model still assigns the padding a density and the canvas's code length includes what it costs
// (at least 0 bits per padded value in expectation, since its bin holds probability ≤ 1, and close to 0 once
// a per-site input ActNorm has learnt that those sites never change). Dividing by D would spread the real
// pixels' cost over 1024 values of which 240 are free and flatter the model by 1024/784. Two figures:
//
//	bits/dim (real pixels)  = code length of the whole canvas / D_real,  D_real = the data's own values (C·28·28)
//	bits/dim (canvas)       = code length of the whole canvas / D         (the plain formula on the padded images)
//
// The real-pixel figure charges whatever the padding costs to the real pixels: it never takes credit for the
// padding, and it bounds from above the model's code length of the real pixels alone (the model's
// probability of the real pixels is at least its probability of the real pixels together with the zero
// padding). "bits_per_dim" is the real-pixel figure everywhere (training metrics, Eval, rgflow eval);
// "bits_per_dim_canvas" is the other. Without padding both are the same number.
//
// Diffusion (DSM): denoising score matching of a graph score network under a linear, mode-diagonal process;
// the loss of a sample is a sum over channels and mode coordinates (not a mean), see DSM.
package losses
