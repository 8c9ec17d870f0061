// Command wire publishes one hostile payload to a run's prompt stream, for
// scripts/chaos.sh: a stage must dead-letter it with its reason, not crash
// or take it.
//
//	go run ./scripts/chaos/wire --nats URL --run ID --payload version|garbage|kind|columns|empty
//	go run ./scripts/chaos/wire --nats URL --run ID --pending logger
//
// version: a prompt batch whose schema says a newer schema version;
// garbage: bytes that are not Arrow IPC; kind: a valid rollout batch on the
// prompt stream; columns: a batch with the prompt kind and version but
// one column only; empty: a message with no body.
//
// --pending CONSUMER prints how many labeled batches the consumer (of a run
// with a labeler) has not acknowledged yet: pending plus unacknowledged.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/schemas"
)

func main() {
	url := flag.String("nats", "", "NATS URL")
	run := flag.String("run", "", "run id")
	payload := flag.String("payload", "", "version, garbage, kind, columns or empty")
	pending := flag.String("pending", "", "print the labeled batches this consumer has not acknowledged")
	flag.Parse()
	var err error
	if *pending != "" {
		err = printPending(*url, *run, *pending)
	} else {
		err = publish(*url, *run, *payload)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wire:", err)
		os.Exit(1)
	}
}

// connect returns a JetStream client of url (nc closes it), run's
// topology and its hop of kind k.
func connect(url, run string, k schemas.Kind) (*nats.Conn, jetstream.JetStream, pipeline.Topology, pipeline.Hop, error) {
	topo, err := pipeline.NewTopology(run)
	if err != nil {
		return nil, nil, topo, pipeline.Hop{}, err
	}
	hop, err := topo.Hop(k)
	if err != nil {
		return nil, nil, topo, hop, err
	}
	nc, err := pipeline.Connect(url)
	if err != nil {
		return nil, nil, topo, hop, err
	}
	js, err := pipeline.NewJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, nil, topo, hop, err
	}
	return nc, js, topo, hop, nil
}

func publish(url, run, payload string) error {
	body, kind, err := build(run, payload)
	if err != nil {
		return err
	}
	nc, js, topo, hop, err := connect(url, run, schemas.KindPrompt)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topo.Ensure(ctx, js); err != nil {
		return err
	}
	p := pipeline.Part{ID: "chaos-wire-" + payload + "-" + strconv.FormatInt(time.Now().UnixNano(), 10), Rows: 1, Data: body}
	_, err = js.PublishMsg(ctx, p.Msg(hop.Subject, kind))
	return err
}

func printPending(url, run, consumer string) error {
	nc, js, _, hop, err := connect(url, run, schemas.KindLabeled)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, hop.Stream, consumer)
	if err != nil {
		return err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Println(info.NumPending + uint64(info.NumAckPending))
	return nil
}

// build returns the message body for payload and the kind its header says.
func build(run, payload string) ([]byte, schemas.Kind, error) {
	prompt := schemas.NewPromptBatch(nil, []schemas.Prompt{{RunID: run, Step: 1, PromptID: "chaos", Task: "add", Prompt: "1+1=", ReferenceAnswer: "2"}})
	defer prompt.Release()
	switch payload {
	case "version":
		md := prompt.Schema().Metadata()
		keys, vals := md.Keys(), append([]string(nil), md.Values()...)
		for i, k := range keys {
			if k == schemas.MetaVersion {
				vals[i] = strconv.Itoa(schemas.Version + 1)
			}
		}
		s := arrow.NewSchema(prompt.Schema().Fields(), new(arrow.NewMetadata(keys, vals)))
		rec := array.NewRecordBatch(s, prompt.Columns(), prompt.NumRows())
		defer rec.Release()
		b, err := schemas.Encode(rec)
		return b, schemas.KindPrompt, err
	case "garbage":
		return []byte("this is not an Arrow IPC stream"), schemas.KindPrompt, nil
	case "empty":
		return nil, schemas.KindPrompt, nil
	case "kind":
		rec := schemas.NewRolloutBatch(nil, []schemas.Rollout{{Prompt: schemas.Prompt{RunID: run, Step: 1, PromptID: "chaos"}, TrajectoryID: "chaos/1/chaos/0"}})
		defer rec.Release()
		b, err := schemas.Encode(rec)
		return b, schemas.KindRollout, err
	case "columns":
		s := arrow.NewSchema(prompt.Schema().Fields()[:1], new(prompt.Schema().Metadata()))
		col := array.NewStringBuilder(memory.DefaultAllocator)
		defer col.Release()
		col.Append(run)
		arr := col.NewArray()
		defer arr.Release()
		rec := array.NewRecordBatch(s, []arrow.Array{arr}, 1)
		defer rec.Release()
		b, err := schemas.Encode(rec)
		return b, schemas.KindPrompt, err
	}
	return nil, "", fmt.Errorf("unknown --payload %q (version, garbage, kind, columns or empty)", payload)
}
