package checkpoints_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"

	"rgflow/checkpoints"
)

// A training loop saves a checkpoint every few steps, keeps the newest two, and resumes from the newest valid one.
func Example() {
	dir, err := os.MkdirTemp("", "run")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	pcg := rand.NewPCG(1, 2)
	w := []float32{0, 0}
	for step := int64(1); step <= 300; step++ {
		w[0] += 0.5 // "training"
		if step%100 != 0 {
			continue
		}
		state, err := pcg.MarshalBinary()
		if err != nil {
			log.Fatal(err)
		}
		c := &checkpoints.Checkpoint{
			Step:    step,
			Weights: []checkpoints.Array{{Name: "layer/w", Shape: []int{2}, Data: w}},
			RNG:     state,
			Config:  []byte(`{"lr":0.001}`),
			Extra:   map[string]string{"data_position": fmt.Sprint(step * 32)},
		}
		if _, err := checkpoints.Save(dir, c); err != nil {
			log.Fatal(err)
		}
		if err := checkpoints.Prune(dir, 2); err != nil {
			log.Fatal(err)
		}
	}

	path, c, skipped, err := checkpoints.Latest(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range skipped {
		log.Printf("skipped: %v", e)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "step-*"))
	fmt.Println(len(left), "checkpoints kept")
	fmt.Println("resume from", filepath.Base(path), "at step", c.Step, "data position", c.Extra["data_position"])
	fmt.Println(c.Weights[0].Name, c.Weights[0].Data)
	// Output:
	// 2 checkpoints kept
	// resume from step-0000300.safetensors at step 300 data position 9600
	// layer/w [150 0]
}
