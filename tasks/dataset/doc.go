// Package dataset reads task items from JSONL files, one JSON object a line:
//
//	{"prompt": "Tom has 3 apples ...", "answer": "He has 3+4=7 apples. #### 7"}
//
// GSM8K's own files, whose lines name the prompt "question", are read as
// they are:
//
//	{"question": "Natalia sold clips to 48 ...", "answer": "... #### 72"}
//
// A line holds one of "prompt" and "question". The answer may be a JSON
// string or number. A GSM8K-style answer, worked text followed by
// "#### <final answer>", is accepted: the reference answer is what follows
// the last "####", trimmed. An optional "id" string names
// the item; other fields are ignored.
//
// Loading streams the file. A bad line (not a JSON object, a missing or
// empty prompt or answer, a wrong field type, a duplicate id, a line longer
// than the limit) never stops the load and never disappears silently: Read
// returns the good records together with every bad line's 1-based number and
// reason, and counts blank lines apart. Options.FailFast stops at the first
// bad line instead.
//
// A Dataset built from records is a tasks.Source: either the whole file is
// one split, or each item's split is decided by tasks.SplitOf on its prompt.
package dataset
