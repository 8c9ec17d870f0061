package schemas

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Kind names one hand-off schema.
type Kind string

// The hand-off kinds, in pipeline order.
const (
	KindPrompt   Kind = "prompt"
	KindRollout  Kind = "rollout"
	KindVerified Kind = "verified"
	KindLabeled  Kind = "labeled"
)

// Version is the schema version this build writes and reads. A payload with
// another version is refused with ErrUnknownVersion.
//
// Version 2 added group_size (rollout) and labeler (labeled); version 3
// added ref_logprobs and reference (labeled).
const Version = 3

// Metadata keys carried by every encoded schema.
const (
	MetaKind    = "wsgrpo.kind"
	MetaVersion = "wsgrpo.schema_version"
)

// KindOf returns the kind a record batch declares in its schema metadata
// (MetaKind). It does not check the columns (Decode does); a batch without
// the key returns an error wrapping ErrSchemaMismatch.
func KindOf(rec arrow.RecordBatch) (Kind, error) {
	md := rec.Schema().Metadata()
	i := md.FindKey(MetaKind)
	if i < 0 {
		return "", fmt.Errorf("%w: record has no %s metadata", ErrSchemaMismatch, MetaKind)
	}
	return Kind(md.Values()[i]), nil
}

// Kinds returns every hand-off kind in pipeline order.
func Kinds() []Kind { return []Kind{KindPrompt, KindRollout, KindVerified, KindLabeled} }

var (
	i32List = arrow.ListOf(arrow.PrimitiveTypes.Int32)
	f32List = arrow.ListOf(arrow.PrimitiveTypes.Float32)
)

// promptFields are the columns of a prompt batch, and the first columns of
// every later kind.
var promptFields = []arrow.Field{
	{Name: "run_id", Type: arrow.BinaryTypes.String},
	{Name: "step", Type: arrow.PrimitiveTypes.Int64},
	{Name: "prompt_id", Type: arrow.BinaryTypes.String},
	{Name: "task", Type: arrow.BinaryTypes.String},
	{Name: "prompt", Type: arrow.BinaryTypes.String},
	{Name: "prompt_token_ids", Type: i32List},
	{Name: "reference_answer", Type: arrow.BinaryTypes.String},
	{Name: "replayed", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "created_ms", Type: arrow.PrimitiveTypes.Int64},
}

// rolloutFields are the columns a sampler adds: one row per completion.
var rolloutFields = []arrow.Field{
	{Name: "trajectory_id", Type: arrow.BinaryTypes.String},
	{Name: "group_id", Type: arrow.BinaryTypes.String},
	{Name: "sample_index", Type: arrow.PrimitiveTypes.Int32},
	{Name: "group_size", Type: arrow.PrimitiveTypes.Int32},
	{Name: "policy_version", Type: arrow.PrimitiveTypes.Int64},
	{Name: "completion", Type: arrow.BinaryTypes.String},
	{Name: "completion_token_ids", Type: i32List},
	{Name: "token_logprobs", Type: f32List},
	{Name: "step_ends", Type: i32List},
	{Name: "finish_reason", Type: arrow.BinaryTypes.String},
	{Name: "sample_ms", Type: arrow.PrimitiveTypes.Float64},
}

// verifiedFields are the columns a verifier adds.
var verifiedFields = []arrow.Field{
	{Name: "extracted_answer", Type: arrow.BinaryTypes.String},
	{Name: "correct", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "terminal_reward", Type: arrow.PrimitiveTypes.Float32},
	{Name: "verify_ms", Type: arrow.PrimitiveTypes.Float64},
}

// labeledFields are the columns a labeler adds.
var labeledFields = []arrow.Field{
	{Name: "step_scores", Type: f32List},
	{Name: "step_rewards", Type: f32List},
	{Name: "shaped_reward", Type: arrow.PrimitiveTypes.Float32},
	{Name: "advantage", Type: arrow.PrimitiveTypes.Float32},
	{Name: "step_advantages", Type: f32List},
	{Name: "shaper", Type: arrow.BinaryTypes.String},
	{Name: "labeler", Type: arrow.BinaryTypes.String},
	{Name: "label_ms", Type: arrow.PrimitiveTypes.Float64},
	{Name: "ref_logprobs", Type: f32List},
	{Name: "reference", Type: arrow.BinaryTypes.String},
}

// Fields returns the columns of kind k, in order.
func Fields(k Kind) ([]arrow.Field, error) {
	var groups [][]arrow.Field
	switch k {
	case KindPrompt:
		groups = [][]arrow.Field{promptFields}
	case KindRollout:
		groups = [][]arrow.Field{promptFields, rolloutFields}
	case KindVerified:
		groups = [][]arrow.Field{promptFields, rolloutFields, verifiedFields}
	case KindLabeled:
		groups = [][]arrow.Field{promptFields, rolloutFields, verifiedFields, labeledFields}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, string(k))
	}
	var out []arrow.Field
	for _, g := range groups {
		out = append(out, g...)
	}
	return out, nil
}

// Schema returns the Arrow schema of kind k at the current Version, with the
// kind and version in its metadata.
func Schema(k Kind) (*arrow.Schema, error) {
	fs, err := Fields(k)
	if err != nil {
		return nil, err
	}
	md := arrow.NewMetadata([]string{MetaKind, MetaVersion}, []string{string(k), fmt.Sprint(Version)})
	return arrow.NewSchema(fs, &md), nil
}

// MustSchema is Schema for kinds known at compile time; it panics on an
// unknown kind, which is a programming error.
func MustSchema(k Kind) *arrow.Schema {
	s, err := Schema(k)
	if err != nil {
		panic(err)
	}
	return s
}

// IDColumn returns the name of the column that holds a row's stable id.
func IDColumn(k Kind) string {
	if k == KindPrompt {
		return "prompt_id"
	}
	return "trajectory_id"
}
