package pipeline

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// The ensure helpers create a stream or bucket, and change an existing
// one only when its configuration differs: creating one that exists with
// the same configuration is a no-op on the server. A secured deployment
// (Permissions) lets every stage create the run's streams but only the
// learner and the administrator update them, so that a stage can join a
// run in any order without being able to reconfigure its streams.

// ensureStream creates cfg's stream, or updates it when it exists with
// another configuration.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	_, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		_, err = js.UpdateStream(ctx, cfg)
	}
	return err
}

// ensureObjectStore creates cfg's object store, or updates it when it
// exists with another configuration.
func ensureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) error {
	_, err := js.CreateObjectStore(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		_, err = js.UpdateObjectStore(ctx, cfg)
	}
	return err
}

// ensureKeyValue creates cfg's KV bucket, or updates it when it exists
// with another configuration, and returns it.
func ensureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.UpdateKeyValue(ctx, cfg)
	}
	return kv, err
}
