package hf

import (
	"fmt"
	"math"
)

// This file is a plain float64 reference forward of the Qwen2, Qwen3 and
// Llama decoders, written from the transformers modeling code's equations
// and independent of the graph builder: one unpadded sequence at a time,
// positions 0..T-1, loops over tokens and heads.

// refModel is a test checkpoint's architecture and tensors.
type refModel struct {
	a refArch
	w map[string]refTensor
}

// matVec returns W·x (+ b) for a [out, in] weight.
func (m refModel) matVec(name string, x []float64, bias string) []float64 {
	w := m.w[name]
	out, in := int(w.shape[0]), int(w.shape[1])
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		s := 0.0
		for i := 0; i < in; i++ {
			s += float64(w.data[o*in+i]) * x[i]
		}
		if bias != "" {
			s += float64(m.w[bias].data[o])
		}
		y[o] = s
	}
	return y
}

// rms returns x / sqrt(mean(x²) + eps) · weight.
func (m refModel) rms(x []float64, weight string) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+m.a.eps)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v * r * float64(m.w[weight].data[i])
	}
	return y
}

// invFreq returns the rotary inverse frequencies, with transformers'
// "llama3" rope scaling (factor 8, low 1, high 4, original context 16 in
// the tests' Llama config).
func (m refModel) invFreq() []float64 {
	dh := m.a.headDim
	f := make([]float64, dh/2)
	for i := range f {
		f[i] = 1 / math.Pow(m.a.theta, float64(2*i)/float64(dh))
	}
	if !m.a.llama3 {
		return f
	}
	const factor, low, high, old = 8.0, 1.0, 4.0, 16.0
	lowWL, highWL := old/low, old/high
	for i, inv := range f {
		wl := 2 * math.Pi / inv
		scaled := inv
		if wl > lowWL {
			scaled = inv / factor
		}
		if !(wl < highWL) && !(wl > lowWL) {
			smooth := (old/wl - low) / (high - low)
			scaled = (1-smooth)*scaled/factor + smooth*scaled
		}
		f[i] = scaled
	}
	return f
}

// rotate applies the rotary embedding at position pos to one head vector
// (pairs i and i+Dh/2).
func rotate(x []float64, pos int, inv []float64) {
	half := len(x) / 2
	for i, f := range inv {
		a := float64(pos) * f
		c, s := math.Cos(a), math.Sin(a)
		x1, x2 := x[i], x[i+half]
		x[i] = x1*c - x2*s
		x[i+half] = x2*c + x1*s
	}
}

// forward returns the logits [T][V] and the final normed hidden states
// [T][D] of one unpadded sequence.
func (m refModel) forward(ids []int) (logits, hidden [][]float64) {
	a := m.a
	T, dh := len(ids), a.headDim
	inv := m.invFreq()
	emb := m.w["model.embed_tokens.weight"]
	x := make([][]float64, T)
	for t, id := range ids {
		x[t] = make([]float64, a.hidden)
		for i := range x[t] {
			x[t][i] = float64(emb.data[id*a.hidden+i])
		}
	}
	for l := 0; l < a.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		bias := func(name string) string {
			if a.qkvBias {
				return p + name
			}
			return ""
		}
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range ids {
			h := m.rms(x[t], p+"input_layernorm.weight")
			q[t] = m.matVec(p+"self_attn.q_proj.weight", h, bias("self_attn.q_proj.bias"))
			k[t] = m.matVec(p+"self_attn.k_proj.weight", h, bias("self_attn.k_proj.bias"))
			v[t] = m.matVec(p+"self_attn.v_proj.weight", h, bias("self_attn.v_proj.bias"))
			for hh := 0; hh < a.heads; hh++ {
				head := q[t][hh*dh : (hh+1)*dh]
				if a.qkNorm {
					copy(head, m.rms(head, p+"self_attn.q_norm.weight"))
				}
				rotate(head, t, inv)
			}
			for hh := 0; hh < a.kvHeads; hh++ {
				head := k[t][hh*dh : (hh+1)*dh]
				if a.qkNorm {
					copy(head, m.rms(head, p+"self_attn.k_norm.weight"))
				}
				rotate(head, t, inv)
			}
		}
		for t := range ids {
			ctx := make([]float64, a.heads*dh)
			for hh := 0; hh < a.heads; hh++ {
				kvh := hh / (a.heads / a.kvHeads)
				qh := q[t][hh*dh : (hh+1)*dh]
				scores := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					s := 0.0
					for i := 0; i < dh; i++ {
						s += qh[i] * k[j][kvh*dh+i]
					}
					scores[j] = s / math.Sqrt(float64(dh))
					mx = math.Max(mx, scores[j])
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - mx)
					sum += scores[j]
				}
				for j := range scores {
					for i := 0; i < dh; i++ {
						ctx[hh*dh+i] += scores[j] / sum * v[j][kvh*dh+i]
					}
				}
			}
			oBias := ""
			if a.oBias {
				oBias = p + "self_attn.o_proj.bias"
			}
			o := m.matVec(p+"self_attn.o_proj.weight", ctx, oBias)
			for i := range o {
				x[t][i] += o[i]
			}
		}
		for t := range ids {
			h := m.rms(x[t], p+"post_attention_layernorm.weight")
			g := m.matVec(p+"mlp.gate_proj.weight", h, "")
			u := m.matVec(p+"mlp.up_proj.weight", h, "")
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := m.matVec(p+"mlp.down_proj.weight", g, "")
			for i := range d {
				x[t][i] += d[i]
			}
		}
	}
	out := "lm_head.weight"
	if a.tied {
		out = "model.embed_tokens.weight"
	}
	logits, hidden = make([][]float64, T), make([][]float64, T)
	for t := range ids {
		hidden[t] = m.rms(x[t], "model.norm.weight")
		logits[t] = m.matVec(out, hidden[t], "")
	}
	return logits, hidden
}

// greedy extends ids by n tokens, each the argmax of the last logits,
// recomputing the whole sequence every step.
func (m refModel) greedy(ids []int, n int) []int {
	seq := append([]int(nil), ids...)
	var out []int
	for i := 0; i < n; i++ {
		logits, _ := m.forward(seq)
		last := logits[len(logits)-1]
		best := 0
		for j, v := range last {
			if v > last[best] {
				best = j
			}
		}
		seq = append(seq, best)
		out = append(out, best)
	}
	return out
}
