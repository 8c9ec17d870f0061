package learner

// trained is one remembered trajectory: its id and the update that
// consumed it (trained it, or skipped it).
type trained struct {
	ID   string `json:"id"`
	Step int64  `json:"step"`
}

// window remembers the last n trajectories the learner consumed, oldest
// first, so that a redelivered row never trains twice. It is checkpointed
// with the weights: a row consumed after the last checkpoint is forgotten
// by a restart, as its update is.
type window struct {
	n     int
	order []trained
	head  int // index of the oldest entry once order is full
	steps map[string]int64
}

// newWindow returns an empty window of n entries, then adds entries
// (oldest first).
func newWindow(n int, entries []trained) *window {
	w := &window{n: n, steps: make(map[string]int64, min(n, 1024))}
	for _, e := range entries {
		w.add(e.ID, e.Step)
	}
	return w
}

// add remembers id as consumed at step, forgetting the oldest entry when
// the window is full.
func (w *window) add(id string, step int64) {
	if _, ok := w.steps[id]; ok {
		return
	}
	if len(w.order) < w.n {
		w.order = append(w.order, trained{id, step})
	} else {
		delete(w.steps, w.order[w.head].ID)
		w.order[w.head] = trained{id, step}
		w.head = (w.head + 1) % w.n
	}
	w.steps[id] = step
}

// step returns the update that consumed id, if remembered.
func (w *window) step(id string) (int64, bool) {
	s, ok := w.steps[id]
	return s, ok
}

// entries returns the remembered trajectories, oldest first.
func (w *window) entries() []trained {
	out := make([]trained, 0, len(w.order))
	out = append(out, w.order[w.head:]...)
	return append(out, w.order[:w.head]...)
}
