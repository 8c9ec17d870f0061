package tokenizer

import (
	"sync"
)

// merge is one rule of the BPE model: the pair's rank (lower merges first)
// and the id of the token it makes.
type merge struct {
	rank int32
	id   int32
}

// pairKey packs a pair of token ids into a map key.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// symbol is one token of a word being merged; prev and next link the live
// symbols (-1 at the ends), and a merged-away symbol has id -1.
type symbol struct {
	id         int32
	prev, next int32
}

// candidate is a possible merge of the symbol at pos with its next one,
// which made id from left and right when it was queued.
type candidate struct {
	rank        int32
	pos         int32
	left, right int32
	id          int32
}

// less orders candidates lowest rank first, then leftmost.
func (c candidate) less(o candidate) bool {
	return c.rank < o.rank || (c.rank == o.rank && c.pos < o.pos)
}

// merger holds the scratch space of one word's merging.
type merger struct {
	syms []symbol
	heap []candidate
}

var mergerPool = sync.Pool{New: func() any { return &merger{} }}

// push adds a candidate to the heap.
func (m *merger) push(c candidate) {
	m.heap = append(m.heap, c)
	i := len(m.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !m.heap[i].less(m.heap[p]) {
			break
		}
		m.heap[i], m.heap[p] = m.heap[p], m.heap[i]
		i = p
	}
}

// pop removes and returns the lowest candidate.
func (m *merger) pop() candidate {
	h := m.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		s := l
		if r := l + 1; r < len(h) && h[r].less(h[l]) {
			s = r
		}
		if !h[s].less(h[i]) {
			break
		}
		h[i], h[s] = h[s], h[i]
		i = s
	}
	m.heap = h
	return top
}

// queue adds the merge of the symbol at pos with its next one, if the
// model has it.
func (m *merger) queue(t *BPE, pos int32) {
	next := m.syms[pos].next
	if next < 0 {
		return
	}
	a, b := m.syms[pos].id, m.syms[next].id
	if r, ok := t.merges[pairKey(a, b)]; ok {
		m.push(candidate{rank: r.rank, pos: pos, left: a, right: b, id: r.id})
	}
}

// mergeWord appends to dst the ids of the raw bytes of one pre-token after
// BPE: each byte starts as its own token, then the lowest-ranked mergeable
// adjacent pair merges, leftmost first among equals, until none is left.
// A priority queue over a linked list makes this O(n log n) in the word's
// length; stale queue entries are recognised by their ids.
func (t *BPE) mergeWord(dst []int32, word string) []int32 {
	if len(word) == 1 {
		if id := t.byteIDs[word[0]]; id >= 0 {
			return append(dst, id)
		}
		return t.appendUnk(dst)
	}
	m := mergerPool.Get().(*merger)
	m.syms = m.syms[:0]
	m.heap = m.heap[:0]
	for i := 0; i < len(word); i++ {
		m.syms = append(m.syms, symbol{id: t.byteIDs[word[i]], prev: int32(i - 1), next: int32(i + 1)})
	}
	m.syms[len(m.syms)-1].next = -1
	for i := range m.syms[:len(m.syms)-1] {
		m.queue(t, int32(i))
	}
	for len(m.heap) > 0 {
		c := m.pop()
		s := &m.syms[c.pos]
		if s.id != c.left || s.next < 0 || m.syms[s.next].id != c.right {
			continue // stale: one side has merged since
		}
		right := &m.syms[s.next]
		s.id = c.id
		right.id = -1
		s.next = right.next
		if s.next >= 0 {
			m.syms[s.next].prev = c.pos
		}
		if s.prev >= 0 {
			m.queue(t, s.prev)
		}
		m.queue(t, c.pos)
	}
	for i := int32(0); i >= 0; i = m.syms[i].next {
		if id := m.syms[i].id; id >= 0 {
			dst = append(dst, id)
		} else {
			dst = t.appendUnk(dst)
		}
	}
	mergerPool.Put(m)
	return dst
}

// appendUnk appends the unknown token, if the model has one (a byte with
// no token of its own is dropped otherwise, as the HF implementations do).
func (t *BPE) appendUnk(dst []int32) []int32 {
	if t.unk >= 0 {
		return append(dst, t.unk)
	}
	return dst
}

// Cache sizes: pre-tokens up to maxCachedWord bytes are cached, up to
// maxCacheEntries of them (the cache starts afresh when full).
const (
	maxCachedWord   = 256
	maxCacheEntries = 1 << 17
)

// wordCache memoises the BPE of pre-tokens; it is safe for concurrent use.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

// init makes the cache empty.
func (c *wordCache) init() { c.m = make(map[string][]int32, 1024) }

// get returns the cached ids of word.
func (c *wordCache) get(word string) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.m[word]
	c.mu.RUnlock()
	return ids, ok
}

// put stores the ids of word.
func (c *wordCache) put(word string, ids []int32) {
	c.mu.Lock()
	if len(c.m) >= maxCacheEntries {
		c.m = make(map[string][]int32, 1024)
	}
	c.m[word] = ids
	c.mu.Unlock()
}

// encodeWord appends the ids of one pre-token (raw bytes).
func (t *BPE) encodeWord(dst []int32, word string) []int32 {
	if t.ignoreMerges {
		if id, ok := t.rawVocab[word]; ok {
			return append(dst, id)
		}
	}
	if len(word) == 1 {
		return t.mergeWord(dst, word)
	}
	if len(word) > maxCachedWord {
		return t.mergeWord(dst, word)
	}
	if ids, ok := t.cache.get(word); ok {
		return append(dst, ids...)
	}
	n := len(dst)
	dst = t.mergeWord(dst, word)
	t.cache.put(word, append([]int32(nil), dst[n:]...))
	return dst
}
