package train

import "github.com/wsgrpo/wsgrpo/model/onnx"

// Bradley-Terry output names.
const (
	// OutputBTLoss is the mean of -log sigmoid(s_pos - s_neg).
	OutputBTLoss = "loss.bt"
	// OutputBTAccuracy is the fraction of pairs with s_pos > s_neg.
	OutputBTAccuracy = "metric.bt_accuracy"
)

// AppendBradleyTerry appends the Bradley-Terry preference loss for scores of
// preferred and rejected items (same shape, float type dt): the mean over
// pairs of -log sigmoid(pos - neg), written as the stable softplus
// relu(-d) + log(1 + exp(-|d|)). It returns the loss and accuracy names.
func AppendBradleyTerry(g *onnx.Graph, dt onnx.DataType, pos, neg string) (loss, accuracy string, err error) {
	e, err := lossEditor(g, dt)
	if err != nil {
		return "", "", err
	}
	op := func(t string, in ...string) string { return e.Op(t, in) }
	d := op("Sub", pos, neg)
	softplus := op("Add", op("Relu", op("Neg", d)), op("Log", op("Add", e.Scalar(dt, 1), op("Exp", op("Neg", op("Abs", d))))))
	mean := e.Op("ReduceMean", []string{softplus}, onnx.AttrI("keepdims", 0))
	acc := e.Op("ReduceMean", []string{e.Op("Cast", []string{op("Greater", d, e.Scalar(dt, 0))}, onnx.AttrI("to", int64(dt)))}, onnx.AttrI("keepdims", 0))
	return named(e, mean, OutputBTLoss, dt), named(e, acc, OutputBTAccuracy, dt), nil
}
