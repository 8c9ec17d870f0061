package learner

import "github.com/wsgrpo/wsgrpo/stages/stage"

// pending is an input batch whose acknowledgement the learner deferred:
// it is acknowledged once every row of it is resolved (trained or
// dropped) and the last update that trained one of them is in a
// checkpoint.
type pending struct {
	ack  stage.Ack
	open int   // rows not yet resolved
	need int64 // the latest update that trained one of its rows
}

// attach makes b wait for one more row.
func (b *pending) attach() {
	if b != nil {
		b.open++
	}
}

// resolve marks one of b's rows done; step is the update that trained it
// (0 for a row dropped without training).
func (b *pending) resolve(step int64) {
	if b == nil {
		return
	}
	b.open--
	b.need = max(b.need, step)
}

// needs makes b wait for update step to be checkpointed (a redelivered
// row that step already trained).
func (b *pending) needs(step int64) {
	if b != nil {
		b.need = max(b.need, step)
	}
}

// due removes and returns the acks of the pending batches that are done
// once update durable is checkpointed, keeping the others in order.
func due(list []*pending, durable int64) (keep []*pending, acks []stage.Ack) {
	keep = list[:0]
	for _, b := range list {
		if b.open == 0 && b.need <= durable {
			acks = append(acks, b.ack)
			continue
		}
		keep = append(keep, b)
	}
	clear(list[len(keep):])
	return keep, acks
}
