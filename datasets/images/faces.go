package images

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// FaceFactors are the independent factors of one synthetic CelebA-style face. Colours are linear RGB in
// [0, 1]; lengths are pixels of the 178×218 canvas; the face's own frame has u to the right and v down,
// centred on the head.
type FaceFactors struct {
	// Coarse factors: they change large areas of the image.
	HeadWidth  float64    // half-width a of the head ellipse
	HeadAspect float64    // half-height / half-width
	Skin       [3]float64 // skin colour
	Background [3]float64 // background colour
	Gradient   float64    // vertical background brightness gradient (−: darker at the bottom)
	Shirt      [3]float64 // colour of the shoulders
	Angle      float64    // pose: in-plane rotation of the whole figure, radians
	OffsetX    float64    // pose: shift of the figure, pixels
	OffsetY    float64
	Light      float64 // pose of the light: left–right shading of the face, −1…1
	// Fine factors: they change small areas or textures.
	EyeSize      float64    // iris radius
	EyeSpacing   float64    // distance between the eye centres
	Iris         [3]float64 // iris colour
	MouthWidth   float64    // mouth corner to corner
	MouthCurve   float64    // + smile, − frown: how far the middle sits below the corners
	Lip          [3]float64 // lip colour
	Hair         [3]float64 // hair colour
	HairFreq     float64    // strands per radian of the hair texture
	HairContrast float64    // strength of the strand texture
	HairCurl     float64    // waviness of the strands
	HairLength   float64    // how far long hair falls below the head centre, in head half-heights (0: short)
	Fringe       float64    // 0: high hairline, 1: a fringe down to the eyebrows
	FringeWave   float64    // phase of the fringe's wavy edge
}

// faceW and faceH are the canvas of a synthetic face, CelebA's aligned size.
const faceW, faceH = CelebAWidth, CelebAHeight

// mixRGB is a + t·(b − a).
func mixRGB(a, b [3]float64, t float64) [3]float64 {
	return [3]float64{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1]), a[2] + t*(b[2]-a[2])}
}

func scaleRGB(c [3]float64, s float64) [3]float64 { return [3]float64{c[0] * s, c[1] * s, c[2] * s} }

// jitter adds independent uniform noise of ±amp to every channel, clamped to [0, 1].
func jitter(rng *rand.Rand, c [3]float64, amp float64) [3]float64 {
	for i := range c {
		c[i] = min(max(c[i]+amp*(2*rng.Float64()-1), 0), 1)
	}
	return c
}

// uniform is a draw from [lo, hi).
func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

// RandomFaceFactors draws every factor independently of every other one, in a fixed order, from rng.
func RandomFaceFactors(rng *rand.Rand) FaceFactors {
	var f FaceFactors
	f.HeadWidth = uniform(rng, 40, 52)
	f.HeadAspect = uniform(rng, 1.15, 1.45)
	light, dark := [3]float64{0.96, 0.80, 0.68}, [3]float64{0.42, 0.27, 0.18}
	f.Skin = jitter(rng, mixRGB(light, dark, rng.Float64()), 0.04)
	f.Background = [3]float64{uniform(rng, 0.1, 0.95), uniform(rng, 0.1, 0.95), uniform(rng, 0.1, 0.95)}
	f.Gradient = uniform(rng, -0.4, 0.4)
	f.Shirt = [3]float64{uniform(rng, 0.05, 0.9), uniform(rng, 0.05, 0.9), uniform(rng, 0.05, 0.9)}
	f.Angle = uniform(rng, -0.14, 0.14) // about ±8°
	f.OffsetX = uniform(rng, -7, 7)
	f.OffsetY = uniform(rng, -6, 6)
	f.Light = uniform(rng, -1, 1)

	f.EyeSize = uniform(rng, 3.6, 5.6)
	f.EyeSpacing = uniform(rng, 32, 44)
	irises := [][3]float64{{0.30, 0.18, 0.08}, {0.15, 0.09, 0.05}, {0.25, 0.45, 0.65}, {0.30, 0.45, 0.25}, {0.45, 0.40, 0.30}}
	f.Iris = jitter(rng, irises[rng.IntN(len(irises))], 0.05)
	f.MouthWidth = uniform(rng, 22, 38)
	f.MouthCurve = uniform(rng, -3, 6)
	f.Lip = jitter(rng, [3]float64{0.70, 0.32, 0.32}, 0.1)
	hairs := [][3]float64{{0.07, 0.05, 0.04}, {0.22, 0.13, 0.07}, {0.45, 0.29, 0.14}, {0.86, 0.72, 0.42}, {0.60, 0.26, 0.10}, {0.62, 0.60, 0.58}}
	f.Hair = jitter(rng, hairs[rng.IntN(len(hairs))], 0.05)
	f.HairFreq = uniform(rng, 60, 160)
	f.HairContrast = uniform(rng, 0.04, 0.22)
	f.HairCurl = uniform(rng, 0, 3)
	f.HairLength = max(0, uniform(rng, -0.6, 1.6))
	f.Fringe = rng.Float64()
	f.FringeWave = uniform(rng, 0, 2*math.Pi)
	return f
}

// smoothStep is 0 for d ≤ −w, 1 for d ≥ w, and smooth between: the anti-aliased inside indicator of a
// shape whose signed depth (positive inside) is d pixels.
func smoothStep(d, w float64) float64 {
	t := min(max((d+w)/(2*w), 0), 1)
	return t * t * (3 - 2*t)
}

// ellipseDepth is approximately the signed distance (pixels, positive inside) to the ellipse centred at
// (cu, cv) with semi-axes ra, rb.
func ellipseDepth(u, v, cu, cv, ra, rb float64) float64 {
	x, y := (u-cu)/ra, (v-cv)/rb
	r := math.Sqrt(x*x + y*y)
	return (1 - r) * min(ra, rb)
}

// over composites colour c with coverage alpha on top of dst.
func over(dst *[3]float64, c [3]float64, alpha float64) {
	for i := range dst {
		dst[i] += alpha * (c[i] - dst[i])
	}
}

// shadeFace is the colour of the point (x, y) of the canvas.
func (f *FaceFactors) shadeFace(x, y float64) [3]float64 {
	// Background: a vertical gradient.
	col := scaleRGB(f.Background, 1+f.Gradient*(y/faceH-0.5))

	// Into the figure's frame: rotate by −Angle about the head centre.
	a, b := f.HeadWidth, f.HeadWidth*f.HeadAspect
	cx, cy := faceW/2+f.OffsetX, 112+f.OffsetY
	sn, cs := math.Sincos(f.Angle)
	dx, dy := x-cx, y-cy
	u, v := cs*dx+sn*dy, -sn*dx+cs*dy
	const aa = 0.75 // anti-aliasing half-width, pixels

	hair := func(u, v float64) [3]float64 {
		// Strands fall from a parting above the crown; the texture is a sinusoid across them, bent by the curl.
		pu, pv := u, v+2.2*b
		ang := math.Atan2(pu, pv)
		r := math.Hypot(pu, pv)
		t := 1 + f.HairContrast*math.Sin(f.HairFreq*ang+f.HairCurl*math.Sin(r/5))
		t *= 1 - 0.2*smoothStep(v/b-0.2, 0.8) // darker towards the nape
		return scaleRGB(f.Hair, t)
	}

	// Shoulders and neck.
	over(&col, f.Shirt, smoothStep(ellipseDepth(u, v, 0, b+78, 1.95*a+20, 62), aa))
	neck := min(0.42*a-math.Abs(u), v-0.3*b)
	over(&col, scaleRGB(f.Skin, 0.8), smoothStep(min(neck, b+40-v), aa))
	// Long hair behind the head.
	if f.HairLength > 0 {
		bottom := f.HairLength * b
		d := min(1.18*a-math.Abs(u), bottom-v)
		d = min(max(min(d, v+0.05*b), ellipseDepth(u, v, 0, -0.05*b, 1.18*a, 1.12*b)), bottom-v)
		if al := smoothStep(d, aa); al > 0 {
			over(&col, scaleRGB(hair(u, v), 0.85), al)
		}
	}
	// Ears.
	if math.Abs(v-0.05*b) < 0.3*b {
		for _, s := range []float64{-1, 1} {
			over(&col, scaleRGB(f.Skin, 0.9), smoothStep(ellipseDepth(u, v, s*0.97*a, 0.05*b, 0.17*a, 0.24*b), aa))
		}
	}
	// Head, lit from one side.
	head := ellipseDepth(u, v, 0, 0, a, b)
	nu, nv := u/a, v/b
	light := 1 - 0.18*(nu*nu+nv*nv)*(nu*nu+nv*nv) + 0.12*f.Light*nu
	over(&col, scaleRGB(f.Skin, light), smoothStep(head, aa))
	if head > -aa {
		f.shadeFeatures(&col, u, v, a, b, light)
	}
	// Hair on top: inside a cap slightly larger than the head, above a hairline that drops at the temples
	// and, with a fringe, reaches down towards the eyebrows with a wavy edge.
	au := math.Abs(u) / a
	edge := -0.62*b + f.Fringe*0.42*b + 0.75*b*au*au*au + 0.035*b*math.Sin(u/4+f.FringeWave)
	capD := ellipseDepth(u, v, 0, -0.06*b, 1.1*a, 1.08*b)
	cover := min(capD, max(edge-v, -head), 0.3*b-v)
	if al := smoothStep(cover, aa); al > 0 {
		over(&col, hair(u, v), al)
	}
	return col
}

// shadeFeatures paints the eyes, eyebrows, nose and mouth at (u, v) of the face frame over col.
func (f *FaceFactors) shadeFeatures(col *[3]float64, u, v, a, b, light float64) {
	const aa = 0.75
	ey, es := -0.08*b, f.EyeSize
	for _, s := range []float64{-1, 1} {
		eu := s * f.EyeSpacing / 2
		if math.Abs(u-eu) > 3*es || v < ey-3.6*es-0.04*b-1 || v > ey+2*es {
			continue
		}
		over(col, scaleRGB(f.Skin, 0.82*light), smoothStep(ellipseDepth(u, v, eu, ey-0.3*es, 2.3*es, 1.35*es), aa))
		white := smoothStep(ellipseDepth(u, v, eu, ey, 2.0*es, 1.05*es), aa*0.7)
		over(col, [3]float64{0.93, 0.92, 0.90}, white)
		over(col, f.Iris, white*smoothStep(ellipseDepth(u, v, eu, ey, es, es), aa*0.6))
		over(col, [3]float64{0.03, 0.03, 0.03}, white*smoothStep(ellipseDepth(u, v, eu, ey, 0.45*es, 0.45*es), aa*0.5))
		over(col, [3]float64{1, 1, 1}, white*smoothStep(ellipseDepth(u, v, eu+0.3*es, ey-0.35*es, 0.22*es, 0.22*es), 0.4))
		// upper lid line
		lid := 0.7 - math.Abs(ellipseDepth(u, v, eu, ey+0.15*es, 2.05*es, 1.25*es))
		if v < ey {
			over(col, scaleRGB(f.Hair, 0.6), 0.8*smoothStep(lid, 0.5))
		}
		// eyebrow: an arc above the eye
		bu := (u - eu) / (2.6 * es)
		if math.Abs(bu) < 1 {
			bv := ey - 2.6*es - 0.04*b*(1-bu*bu)
			d := 2.2*math.Sqrt(1-bu*bu) - math.Abs(v-bv)
			over(col, scaleRGB(f.Hair, 0.8), 0.95*smoothStep(d, 0.6))
		}
	}
	// Nose: a soft shadow on the lit side's opposite and two nostrils.
	over(col, scaleRGB(f.Skin, 0.78*light), 0.5*smoothStep(ellipseDepth(u, v, -0.08*a*f.Light, 0.22*b, 0.1*a, 0.2*b), 3))
	for _, s := range []float64{-1, 1} {
		over(col, scaleRGB(f.Skin, 0.45), 0.8*smoothStep(ellipseDepth(u, v, s*0.1*a, 0.36*b, 0.06*a, 0.035*b), aa))
	}
	// Mouth: a curved band, thickest in the middle.
	hw := f.MouthWidth / 2
	if mu := u / hw; math.Abs(mu) < 1.05 {
		mv := 0.56*b + f.MouthCurve*(1-mu*mu) - 0.5*f.MouthCurve
		thick := 0.6 + 2.6*math.Sqrt(max(1-mu*mu, 0))
		d := min(thick-math.Abs(v-mv), (1-math.Abs(mu))*hw)
		over(col, scaleRGB(f.Lip, light), smoothStep(d, aa))
		over(col, scaleRGB(f.Lip, 0.35), smoothStep(min(0.55-math.Abs(v-mv), (1-math.Abs(mu))*hw), 0.5))
	}
}

// RenderFace draws the face as a 178×218 RGB image, anti-aliased by 2×2 supersampling.
func RenderFace(f FaceFactors) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, faceW, faceH))
	for y := 0; y < faceH; y++ {
		for x := 0; x < faceW; x++ {
			var acc [3]float64
			for _, o := range [4][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
				c := f.shadeFace(float64(x)+o[0], float64(y)+o[1])
				acc[0] += c[0] / 4
				acc[1] += c[1] / 4
				acc[2] += c[2] / 4
			}
			img.SetRGBA(x, y, color.RGBA{toByte(255 * acc[0]), toByte(255 * acc[1]), toByte(255 * acc[2]), 255})
		}
	}
	return img
}

// FaceFactorsAt are the factors of face i of a seed: drawn from rand.NewPCG(seed, i), so any face can be
// made alone and in any order.
func FaceFactorsAt(seed uint64, i int) FaceFactors {
	return RandomFaceFactors(rand.New(rand.NewPCG(seed, uint64(i))))
}

// FacesSplit is the CelebA split of face i of n in WriteFaces' 80/10/10 partition: the first
// round(0.8n) are train, the next round(0.1n) valid, the rest test.
func FacesSplit(i, n int) int {
	nTrain := int(math.Round(0.8 * float64(n)))
	nValid := int(math.Round(0.1 * float64(n)))
	switch {
	case i < nTrain:
		return CelebATrain
	case i < nTrain+nValid:
		return CelebAValid
	}
	return CelebATest
}

// FaceFileName is the name of face i (0-based) as in CelebA: "000001.jpg" for i = 0.
func FaceFileName(i int) string { return fmt.Sprintf("%06d.jpg", i+1) }

// FacesJPEGQuality is the JPEG quality WriteFaces uses.
const FacesJPEGQuality = 92

// WriteFaces writes n synthetic faces of a seed in the CelebA layout: DIR/img_align_celeba/000001.jpg …
// (178×218 JPEGs of quality FacesJPEGQuality) and DIR/list_eval_partition.txt with the 80/10/10 split of
// FacesSplit. Face i is RenderFace(FaceFactorsAt(seed, i)); workers goroutines render them (0: GOMAXPROCS),
// and the files do not depend on how many.
func WriteFaces(dir string, n int, seed uint64, workers int) error {
	if n < 1 || n > 999999 {
		return fmt.Errorf("images: faces: %d images, want 1…999999", n)
	}
	imgDir := filepath.Join(dir, CelebAImageDir)
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return fmt.Errorf("images: faces: %w", err)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			var buf bytes.Buffer
			for i := w; i < n; i += workers {
				buf.Reset()
				if err := jpeg.Encode(&buf, RenderFace(FaceFactorsAt(seed, i)), &jpeg.Options{Quality: FacesJPEGQuality}); err != nil {
					errs[w] = fmt.Errorf("images: faces: encoding %s: %w", FaceFileName(i), err)
					return
				}
				if err := os.WriteFile(filepath.Join(imgDir, FaceFileName(i)), buf.Bytes(), 0o644); err != nil {
					errs[w] = fmt.Errorf("images: faces: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var list strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&list, "%s %d\n", FaceFileName(i), FacesSplit(i, n))
	}
	if err := os.WriteFile(filepath.Join(dir, CelebAPartitionFile), []byte(list.String()), 0o644); err != nil {
		return fmt.Errorf("images: faces: %w", err)
	}
	return nil
}
