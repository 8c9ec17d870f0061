package tokenizer

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/ardanlabs/jinja"
)

// Errors of chat templates.
var (
	// ErrNoChatTemplate means tokenizer_config.json has no chat_template.
	ErrNoChatTemplate = errors.New("tokenizer: the model has no chat template")
	// ErrChatPrompt means a chat template cannot serve as a prompt
	// template: rendering a user turn does not keep its text as it is.
	ErrChatPrompt = errors.New("tokenizer: the chat template does not keep a user turn's text as it is")
	// ErrChatTemplate means a chat template failed to compile or render
	// (the engine's message follows, including raise_exception's).
	ErrChatTemplate = errors.New("tokenizer: chat template failed")
)

// ChatMessage is one turn of a conversation.
type ChatMessage struct {
	// Role is "system", "user" or "assistant" (templates may know more).
	Role string
	// Content is the turn's text.
	Content string
}

// ChatTemplate is a compiled Hugging Face chat template (Jinja, rendered
// by a pure-Go engine that matches transformers' output on the Qwen3 and
// Llama 3.1 templates). It is safe for concurrent use.
type ChatTemplate struct {
	tmpl *jinja.Template
	vars map[string]any // bos_token, eos_token, pad_token when named
}

// NewChatTemplate compiles a chat template's Jinja source; vars are the
// variables every rendering sees (transformers passes the special tokens:
// "bos_token", "eos_token", ...).
func NewChatTemplate(source string, vars map[string]any) (*ChatTemplate, error) {
	if source == "" {
		return nil, ErrNoChatTemplate
	}
	tmpl, err := jinja.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChatTemplate, err)
	}
	return &ChatTemplate{tmpl: tmpl, vars: maps.Clone(vars)}, nil
}

// Render renders a conversation; with addGenerationPrompt the text ends
// with the header of the assistant's turn, ready for sampling.
func (c *ChatTemplate) Render(messages []ChatMessage, addGenerationPrompt bool) (string, error) {
	return c.RenderWith(messages, addGenerationPrompt, nil)
}

// RenderWith is Render with more template variables (for example Qwen3's
// "enable_thinking" or Llama's "date_string"); they override the defaults.
func (c *ChatTemplate) RenderWith(messages []ChatMessage, addGenerationPrompt bool, extra map[string]any) (string, error) {
	msgs := make([]any, len(messages))
	for i, m := range messages {
		msgs[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	data := maps.Clone(c.vars)
	if data == nil {
		data = map[string]any{}
	}
	data["messages"] = msgs
	data["add_generation_prompt"] = addGenerationPrompt
	maps.Copy(data, extra)
	out, err := c.tmpl.Render(data)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrChatTemplate, err)
	}
	return out, nil
}

// chatOnce compiles a BPE's chat template, and renders its prompt
// template, on first use.
type chatOnce struct {
	once sync.Once
	tmpl *ChatTemplate
	err  error

	promptOnce sync.Once
	prompt     string
	promptErr  error
}

// Chat returns the model's chat template from tokenizer_config.json,
// compiled once, with bos_token, eos_token and pad_token set as
// transformers sets them (absent when the model has none). The error
// wraps ErrNoChatTemplate when there is none.
func (t *BPE) Chat() (*ChatTemplate, error) {
	c := &t.chat
	c.once.Do(func() {
		vars := map[string]any{}
		for name, id := range map[string]int32{"bos_token": t.bos, "eos_token": t.eos, "pad_token": t.pad} {
			if id >= 0 {
				vars[name] = t.tokens[id]
			}
		}
		c.tmpl, c.err = NewChatTemplate(t.chatTemplate, vars)
	})
	return c.tmpl, c.err
}

// RenderChat renders messages with the model's chat template; with
// addGenerationPrompt the text ends with the assistant's header. Encode
// the result as it is: the template writes BOS and the turn markers as
// text, which Encode turns into their special ids.
func (t *BPE) RenderChat(messages []ChatMessage, addGenerationPrompt bool) (string, error) {
	c, err := t.Chat()
	if err != nil {
		return "", err
	}
	return c.Render(messages, addGenerationPrompt)
}

// ChatPromptTemplate returns the prompt template (PromptPlaceholder
// standing for the prompt) that puts a prompt in the model's chat
// template as the user's turn, followed by the header of the assistant's
// turn: what a chat model continues. The template is rendered once, with
// the placeholder as the user's text, so a prompt goes in as it is (what a
// template does to the content, such as Llama's trim, is not applied to
// it), on first use; the sampler asks for it with every batch. The error
// wraps ErrNoChatTemplate when the model has none, ErrChatTemplate when it
// fails to render, ErrChatPrompt when the user's text does not come out
// once and unchanged.
func (t *BPE) ChatPromptTemplate() (string, error) {
	c := &t.chat
	c.promptOnce.Do(func() {
		text, err := t.RenderChat([]ChatMessage{{Role: "user", Content: PromptPlaceholder}}, true)
		switch {
		case err != nil:
			c.promptErr = err
		case strings.Count(text, PromptPlaceholder) != 1:
			c.promptErr = ErrChatPrompt
		default:
			c.prompt = text
		}
	})
	return c.prompt, c.promptErr
}
