package schemas

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func ipcBytes(t testing.TB, recs ...arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(recs[0].Schema()))
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzDecode feeds arbitrary bytes to Decode and the row readers: they must
// return an error or rows, never panic or leak.
func FuzzDecode(f *testing.F) {
	mem := memory.NewGoAllocator()
	for _, k := range Kinds() {
		rec := NewLabeledBatch(mem, sampleLabeled(3))
		b, err := Encode(rec)
		rec.Release()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, string(k))
		f.Add(b[:len(b)/3], string(k))
	}
	prompt := NewPromptBatch(mem, []Prompt{{PromptID: "x", PromptTokenIDs: []int32{1}}})
	pb, _ := Encode(prompt)
	prompt.Release()
	f.Add(pb, string(KindPrompt))
	f.Fuzz(func(t *testing.T, payload []byte, kind string) {
		cm := memory.NewCheckedAllocator(memory.NewGoAllocator())
		rec, err := Decode(Kind(kind), payload, cm)
		if err == nil {
			if _, err := ReadPrompts(rec); err != nil {
				t.Fatalf("decoded batch unreadable: %v", err)
			}
			if Kind(kind) == KindLabeled {
				if _, err := ReadLabeled(rec); err != nil {
					t.Fatalf("decoded labeled batch unreadable: %v", err)
				}
			}
			rec.Release()
		}
		cm.AssertSize(t, 0)
	})
}
