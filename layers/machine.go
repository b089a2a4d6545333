package layers

import (
	G "gorgonia.org/gorgonia"

	"rgflow/layers/tape"
)

// NewTapeMachine compiles g into Gorgonia's tape machine, as G.NewTapeMachine does, after making the hash of
// every node of g distinct, so that the compiler cannot merge two distinct nodes whose 32-bit hashes collide
// (Gorgonia pitfall 10 in the package doc; package tape has the details). Every machine of the kit is built
// through it; build yours through it too.
func NewTapeMachine(g *G.ExprGraph, opts ...G.VMOpt) (G.VM, error) { return tape.New(g, opts...) }

// MustNewTapeMachine is NewTapeMachine for tests and examples: it panics where NewTapeMachine returns an
// error (only on a Gorgonia version whose node and graph structs differ from the pinned v0.9.18).
func MustNewTapeMachine(g *G.ExprGraph, opts ...G.VMOpt) G.VM { return tape.Must(g, opts...) }
