// Package tape builds Gorgonia tape machines that cannot merge distinct nodes by a hash collision.
//
// Gorgonia v0.9.18's compiler numbers values by the nodes' 32-bit hashes alone, so two distinct nodes whose
// hashes collide are compiled as one and every reader of the second silently reads the first one's value
// (see New). Every machine of rgflow is built through New; package layers re-exports it as
// layers.NewTapeMachine. The package depends on Gorgonia only, so test kits that package layers' own
// tests import can use it too.
package tape

import (
	"fmt"
	"reflect"
	"unsafe"

	G "gorgonia.org/gorgonia"
)

// New compiles g into Gorgonia's tape machine, as G.NewTapeMachine does, after making the hash of
// every node of g distinct (Gorgonia pitfall 10 in package layers' doc). Every machine of the kit is
// built through it; build yours through it too.
//
// Gorgonia's compiler numbers values by the nodes' 32-bit hashes alone (analysis.go, dataflow.vn): two
// nodes whose hashes collide are treated as one common subexpression, and every reader of the second one
// silently reads the first one's value, whatever its op or shape. With N nodes a collision happens with
// probability about N²/2³³ — 1 in 1,800 for the 2,200 nodes of the fused neuralrg gradient graph at L = 8,
// and fused ops hash their plan's address, so the dice are thrown again in every process. It was seen as
// a gradient of the wrong size (a 10-value bias gradient read as a 3×64 segment) once in a thousand
// training runs. New gives each node that shares its hash with an earlier node of g a fresh,
// unused hash before compiling, so no two distinct nodes are merged. (Nodes that are really equal were
// merged already when they were added to the graph.)
//
// Nodes added to g after the machine is built are not covered by that machine (as with G.NewTapeMachine,
// they are not in it at all); a later New on g covers them.
func New(g *G.ExprGraph, opts ...G.VMOpt) (G.VM, error) {
	if g == nil {
		return nil, fmt.Errorf("tape: nil graph")
	}
	if _, err := distinctHashes(g); err != nil {
		return nil, err
	}
	return G.NewTapeMachine(g, opts...), nil
}

// distinctHashes rewrites the cached hash of every node of g that repeats the hash of an earlier node, so
// that all hashes differ, registers the node under its new hash in the graph's hash index, and returns how
// many it rewrote. The cache and the index are unexported fields of G.Node and G.ExprGraph, reached through
// reflection + unsafe; if they are not there (another Gorgonia version), distinctHashes
// returns an error rather than compile a graph it cannot vouch for.
func distinctHashes(g *G.ExprGraph) (int, error) {
	typ := reflect.TypeFor[G.Node]()
	hf, ok := typ.FieldByName("hash")
	if !ok || hf.Type.Kind() != reflect.Uint32 {
		return 0, fmt.Errorf("tape: this Gorgonia version has no Node.hash uint32 field; the hash-collision guard needs a review")
	}
	bf, ok := reflect.TypeFor[G.ExprGraph]().FieldByName("byHash")
	if !ok || bf.Type != reflect.TypeFor[map[uint32]*G.Node]() {
		return 0, fmt.Errorf("tape: this Gorgonia version has no ExprGraph.byHash map[uint32]*Node field; the hash-collision guard needs a review")
	}
	byHash := *(*map[uint32]*G.Node)(unsafe.Add(unsafe.Pointer(g), bf.Offset))
	nodes := g.AllNodes()
	seen := make(map[uint32]bool, len(nodes))
	visited := make(map[*G.Node]bool, len(nodes))
	var repeats []*G.Node
	for _, n := range nodes {
		if visited[n] {
			continue
		}
		visited[n] = true
		h := n.Hashcode() // computes and caches it
		if seen[h] {
			repeats = append(repeats, n)
			continue
		}
		seen[h] = true
	}
	for _, n := range repeats {
		h := n.Hashcode()
		// Avoid the hashes of this graph's nodes and every hash the graph's index knows (a subgraph shares
		// its parent's index, which also holds nodes outside the subgraph). The walk is a full-period
		// linear congruential sequence, so it reaches every 32-bit value.
		for {
			_, indexed := byHash[h]
			if !seen[h] && !indexed {
				break
			}
			h = h*2654435761 + 0x9e3779b9
		}
		seen[h] = true
		*(*uint32)(unsafe.Add(unsafe.Pointer(n), hf.Offset)) = h // the first loop set Node.hashed
		// Gorgonia re-adds every child of a new node to the graph by its hash (Node.fixChildren): register
		// the new hash, or a node built on n later would add n to the graph a second time.
		byHash[h] = n
	}
	return len(repeats), nil
}

// Must is New for tests and examples: it panics where New returns an
// error (only on a Gorgonia version whose node and graph structs differ from the pinned v0.9.18).
func Must(g *G.ExprGraph, opts ...G.VMOpt) G.VM {
	m, err := New(g, opts...)
	if err != nil {
		panic(err)
	}
	return m
}
