// Package labeler is WS-GRPO's weak labeler (Phase I): a preference model
// f_w(q, prefix) trained from outcome-only correctness, and the pieces that
// apply it to rollouts.
//
//   - Featurizer runs the frozen reference policy's full-sequence graph in
//     one ONNX Runtime session and returns its final (layer-normed) hidden
//     state at requested token positions. A prefix of a completion is
//     represented by the hidden state at its last token: prefix 0 (the
//     empty completion) by the last prompt token, prefix t by the token
//     ending step t. One forward pass per sequence gives every prefix.
//   - Model is the preference MLP, d_model -> Hidden -> 1 with ReLU,
//     float32 weights, scored in plain Go (Model.Score). Its ID, a content
//     hash, is recorded on every labeled row.
//   - BuildPairs turns groups of rollouts of one prompt (correctness plus
//     per-prefix features) into Bradley-Terry pairs: full (correct,
//     incorrect) trajectories and same-depth prefixes.
//   - Fit trains a Model on pairs through an ONNX gradient graph
//     (train.AppendBradleyTerry, train.Trainer with AdamW), holding out
//     whole prompts to measure generalisation.
//   - Save and Load keep a Model as an artifact directory: safetensors
//     weights plus JSON metadata.
//   - Scorer (a Featurizer and a Model) gives the labeler stage the
//     per-prefix scores of rollouts.
package labeler
