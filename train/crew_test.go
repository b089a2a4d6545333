package train

import (
	"runtime"
	"testing"
	"time"
)

// TestCrewRunsEveryPartOnce runs many jobs of varying sizes on crews that spin and on crews that block at
// once, with pauses longer than the spin between some of them (so that members go to sleep and are woken),
// and checks that every part ran exactly once per job and that the members' plain writes are visible to the
// caller when run returns (under -race a missing happens-before edge is reported).
func TestCrewRunsEveryPartOnce(t *testing.T) {
	for _, spin := range []time.Duration{crewSpin, 0} {
		c := newCrew(4, spin)
		var count [4]int
		want := [4]int{}
		for job := range 300 {
			n := 1 + job%4
			var wrote [4]int
			c.run(n, func(i int) {
				count[i]++
				wrote[i] = job + 1
			})
			for i := range n {
				want[i]++
				if wrote[i] != job+1 {
					t.Fatalf("spin %v, job %d: part %d wrote %d, want %d", spin, job, i, wrote[i], job+1)
				}
			}
			if count != want {
				t.Fatalf("spin %v, job %d: parts ran %v times, want %v", spin, job, count, want)
			}
			if job%50 == 0 {
				time.Sleep(2 * crewSpin) // let the members stop spinning and block
			}
		}
		c.stop()
		c.stop() // a second stop is harmless
	}
}

// TestCrewStopEndsMembers checks that stop ends the members' goroutines, whether they are spinning or
// blocked, and that a nil crew runs the parts on the caller.
func TestCrewStopEndsMembers(t *testing.T) {
	before := runtime.NumGoroutine()
	c := newCrew(3, crewSpin)
	c.run(3, func(int) {})
	if got := runtime.NumGoroutine(); got < before+2 {
		t.Fatalf("%d goroutines with a crew of 3, want at least %d", got, before+2)
	}
	c.stop()
	// A member has returned from its loop when stop returns; its goroutine may take a moment to be gone.
	got := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); got > before && time.Now().Before(deadline); got = runtime.NumGoroutine() {
		time.Sleep(time.Millisecond)
	}
	if got > before {
		t.Fatalf("%d goroutines after stop, want at most %d", got, before)
	}
	var nilCrew *crew
	var ran []int
	nilCrew.run(3, func(i int) { ran = append(ran, i) })
	if len(ran) != 3 || ran[0] != 0 || ran[1] != 1 || ran[2] != 2 {
		t.Fatalf("a nil crew ran parts %v, want [0 1 2] in order", ran)
	}
}

// TestBarrier has goroutines write their slot, arrive and wait, then read every other slot: after wait all
// writes made before arrive are visible (checked by value and, under -race, by the detector), with and
// without spinning.
func TestBarrier(t *testing.T) {
	for _, spin := range []time.Duration{crewSpin, 0} {
		for round := range 50 {
			const n = 3
			b := newBarrier(n, spin)
			var slots [n]int
			errs := make(chan string, n)
			for g := range n {
				go func() {
					if g == round%n {
						time.Sleep(time.Duration(round%3) * crewSpin) // sometimes longer than the spin
					}
					slots[g] = round + g + 1
					b.arrive()
					b.wait()
					for h := range n {
						if slots[h] != round+h+1 {
							errs <- "a slot written before arrive was not visible after wait"
							return
						}
					}
					errs <- ""
				}()
			}
			for range n {
				if e := <-errs; e != "" {
					t.Fatalf("spin %v, round %d: %s", spin, round, e)
				}
			}
		}
	}
}
