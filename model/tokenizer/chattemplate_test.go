package tokenizer

import (
	"errors"
	"testing"
)

func TestChatTemplate(t *testing.T) {
	const qwenLike = "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endfor %}" +
		"{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
	msgs := []ChatMessage{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "2+2?"}}
	tests := []struct {
		name    string
		source  string
		vars    map[string]any
		addGen  bool
		extra   map[string]any
		want    string
		wantErr error
	}{
		{"turns", qwenLike, nil, false, nil, "<|im_start|>system\nBe brief.<|im_end|><|im_start|>user\n2+2?<|im_end|>", nil},
		{"generation prompt", qwenLike, nil, true, nil, "<|im_start|>system\nBe brief.<|im_end|><|im_start|>user\n2+2?<|im_end|><|im_start|>assistant\n", nil},
		{"bos variable", "{{ bos_token }}{{ messages | length }}", map[string]any{"bos_token": "<s>"}, false, nil, "<s>2", nil},
		{"extra overrides", "{{ x }}", map[string]any{"x": 1}, false, map[string]any{"x": "y"}, "y", nil},
		{"undefined bos is empty", "[{{ bos_token }}]", nil, false, nil, "[]", nil},
		{"no template", "", nil, false, nil, "", ErrNoChatTemplate},
		{"syntax error", "{% for %}", nil, false, nil, "", ErrChatTemplate},
		{"raise_exception", "{{ raise_exception('no system role') }}", nil, false, nil, "", ErrChatTemplate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewChatTemplate(tc.source, tc.vars)
			var got string
			if err == nil {
				got, err = c.RenderWith(msgs, tc.addGen, tc.extra)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBPERenderChat(t *testing.T) {
	tok := newTiny(t, tinySpec{
		added:  []map[string]any{special("<s>"), special("</s>")},
		config: map[string]any{"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"},
	})
	got, err := tok.RenderChat([]ChatMessage{{Role: "user", Content: "hi"}}, true)
	if err != nil || got != "<s>hi</s>" {
		t.Fatalf("RenderChat = %q, %v", got, err)
	}
	if tok.ChatTemplate() == "" {
		t.Error("ChatTemplate empty")
	}
	none := newTiny(t, tinySpec{})
	if _, err := none.RenderChat(nil, true); !errors.Is(err, ErrNoChatTemplate) {
		t.Errorf("error %v, want ErrNoChatTemplate", err)
	}
}

func TestBPEChatPromptTemplate(t *testing.T) {
	withTemplate := func(tmpl string) *BPE {
		return newTiny(t, tinySpec{
			added:  []map[string]any{special("<s>"), special("</s>")},
			config: map[string]any{"bos_token": "<s>", "eos_token": "</s>", "chat_template": tmpl},
		})
	}
	for _, tc := range []struct {
		name string
		tok  *BPE
		want string
		err  error
	}{
		{"user turn and assistant header", withTemplate("{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"), "<s><user>" + PromptPlaceholder + "</s><assistant>", nil},
		{"no chat template", newTiny(t, tinySpec{}), "", ErrNoChatTemplate},
		{"content dropped", withTemplate("{% for m in messages %}<{{ m.role }}>{% endfor %}"), "", ErrChatPrompt},
		{"content twice", withTemplate("{% for m in messages %}{{ m.content }}{{ m.content }}{% endfor %}"), "", ErrChatPrompt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.tok.ChatPromptTemplate()
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("ChatPromptTemplate() = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
