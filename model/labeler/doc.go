// Package labeler is WS-GRPO's weak labeler (Phase I): a preference model
// f_w(q, prefix) trained from outcome-only correctness, and the pieces that
// apply it to rollouts.
//
//   - Featurizer runs the frozen reference policy's full-sequence graph in
//     one ONNX Runtime session. A prefix of a completion (prefix 0, the
//     empty completion, ends at the last prompt token; prefix t at the
//     token ending step t) is represented, by kind (FeaturesHidden,
//     FeaturesConfidence, FeaturesBoth), by the final (layer-normed)
//     hidden state at its last token, by summaries of the policy's
//     log-probabilities of the completion's tokens so far
//     (ConfidenceFeatures), or by both. One forward pass per sequence
//     gives every prefix.
//   - Model is the preference MLP, features -> Hidden -> 1 with ReLU,
//     float32 weights, scored in plain Go (Model.Score). Its ID, a content
//     hash, is recorded on every labeled row; it records its feature kind.
//   - BuildPairs turns groups of rollouts of one prompt (correctness plus
//     per-prefix features) into Bradley-Terry pairs: full (correct,
//     incorrect) trajectories and same-depth prefixes; AnchorPairs ties
//     the score's level across depths (correct trajectory over the empty
//     completion over a wrong one); Pairs gives both as a Config asks.
//   - Fit trains a Model on pairs through an ONNX gradient graph
//     (train.AppendBradleyTerry, train.Trainer with AdamW), holding out
//     whole prompts to measure generalisation.
//   - Save and Load keep a Model as an artifact directory: safetensors
//     weights plus JSON metadata.
//   - Scorer (a Featurizer and a Model) gives the labeler stage the
//     per-prefix scores of rollouts.
package labeler
