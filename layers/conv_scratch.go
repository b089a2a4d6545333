package layers

// convScratch is the reusable working memory of one convolution op built with an arena (a layer of a
// training graph): its plans, padded-input buffers, packed weights and kernel tables live from one run of
// the machine to the next instead of being allocated (and zeroed, and collected) on every call.
//
// An op's calls ask for their buffers in the same order on every run (the code path depends only on the
// geometry and the CPU), so the scratch hands out slot k of a call to the k-th request, reused when it is
// of the same size. A buffer asked for zeroed is cleared on reuse (as make would give it); the others hold
// what the last call of the same code wrote, and the code asking for them either writes every element it
// later reads or writes the same elements on every call (so the ones it relies on being zero, such as
// padding lanes, stay as make left them).
// It relies on what the arena already requires: one machine runs the graph at a time. A nil
// *convScratch allocates every buffer afresh and caches nothing (ops built without an arena).
type convScratch struct {
	plans map[convGeom]*convPlan
	up    map[[6]int]*convPlan // UpsampleConv2D's phase plans (convScratch.upPlan)
	f32   [][]float32
	f64   [][]float64
	n32   int // slots of each type handed out in the current call
	n64   int
}

func newConvScratch() *convScratch { return &convScratch{plans: map[convGeom]*convPlan{}} }

// begin starts a call: slots are handed out from the first again.
func (s *convScratch) begin() {
	if s != nil {
		s.n32, s.n64 = 0, 0
	}
}

// plan returns the (cached) plan of the stride-pattern geometry g (newConvPlan).
func (s *convScratch) plan(g convGeom) *convPlan {
	if s == nil {
		return newConvPlan(g)
	}
	p, ok := s.plans[g]
	if !ok {
		p = newConvPlan(g)
		s.plans[g] = p
	}
	return p
}

// scratchBuf returns n elements of working memory: the call's next slot of s (zeroed when zero), or a
// new slice when s is nil.
func scratchBuf[T float](s *convScratch, n int, zero bool) []T {
	if s == nil {
		return make([]T, n)
	}
	var b []T
	switch p := any(&b).(type) {
	case *[]float32:
		*p = takeSlot(&s.f32, &s.n32, n, zero)
	case *[]float64:
		*p = takeSlot(&s.f64, &s.n64, n, zero)
	}
	return b
}

func takeSlot[T float](slots *[][]T, next *int, n int, zero bool) []T {
	k := *next
	*next++
	if k == len(*slots) {
		*slots = append(*slots, nil)
	}
	b := (*slots)[k]
	if len(b) != n { // a slot serves one request of one size: what it holds past the writes is from make
		b = make([]T, n)
		(*slots)[k] = b
		return b
	}
	if zero {
		clear(b)
	}
	return b
}

func isF32[T float]() bool {
	_, ok := any(*new(T)).(float32)
	return ok
}
