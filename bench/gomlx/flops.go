package main

// TrainFLOPs returns the matmul FLOPs of one training step (forward,
// backward and nothing else) for batch b, sequence t, model width d, MLP
// width f, vocabulary v and the given number of layers. Per layer the
// forward pass costs 2·B·T·(4·D² + 2·D·F) for the Q, K, V, O projections
// and the MLP plus 2·2·B·T²·D for QKᵀ and AV; the output head costs
// 2·B·T·D·V; a training step counts as three forward passes.
func TrainFLOPs(b, t, d, f, v, layers int) float64 {
	B, T, D, F, V := float64(b), float64(t), float64(d), float64(f), float64(v)
	perLayer := 2*B*T*(4*D*D+2*D*F) + 2*2*B*T*T*D
	forward := float64(layers)*perLayer + 2*B*T*D*V
	return 3 * forward
}
