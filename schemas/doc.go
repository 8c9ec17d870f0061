// Package schemas defines the Arrow schemas of every hand-off between wsgrpo
// stages (prompt, rollout, verified and labeled batches), their versioning, the
// Arrow IPC codec that every message payload uses, typed row views, and the
// trajectory-log DDL.
//
// Each later schema extends the one before it: a rollout row carries every
// prompt column, a verified row every rollout column, a labeled row every
// verified column. A stage therefore adds columns and never invents its own.
//
// The schema kind and version travel in the Arrow schema metadata under
// MetaKind and MetaVersion. Decode refuses a payload whose kind, version or
// columns do not match with an error that matches ErrInvalid.
package schemas
