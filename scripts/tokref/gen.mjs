// gen.mjs OUTDIR [N]: writes the reference data of the tokenizer tests.
//
//   OUTDIR/<model>.encode.jsonl  [kind, text, ids, decode, decodeWithSpecial]
//   OUTDIR/<model>.decode.jsonl  [ids, decode, decodeWithSpecial] of random ids
//   OUTDIR/<model>.chat.json     [{messages, add_generation_prompt, extra, text}]
//   OUTDIR/meta.json             versions and counts
//
// Encoding is without special tokens added (add_special_tokens: false);
// decoding is without clean_up_tokenization_spaces, with and without
// skip_special_tokens.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Template } from "@huggingface/jinja";
import { makeCorpus, mulberry32 } from "./corpus.mjs";
import { MODELS, load, modelDir } from "./models.mjs";

const here = path.dirname(new URL(import.meta.url).pathname);
// pkgVersion reads an installed package's version (their exports hide
// package.json from require).
const pkgVersion = (pkg) =>
  JSON.parse(readFileSync(path.join(here, "node_modules", pkg, "package.json"), "utf8")).version;
const out = process.argv[2];
const n = Number(process.argv[3] ?? 24000);
if (!out) {
  console.error("usage: node gen.mjs OUTDIR [N]");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const corpus = makeCorpus(n);
const CONVERSATIONS = [
  [{ role: "user", content: "What is 12 + 30?" }],
  [
    { role: "system", content: "You are a careful math tutor." },
    { role: "user", content: "Natalia sold 48 clips in April and half as many in May. How many in total?" },
    { role: "assistant", content: "In May she sold 48 / 2 = 24.\n48 + 24 = 72.\n#### 72" },
    { role: "user", content: "  And in June, twice May's?  " },
  ],
  [
    { role: "user", content: "Hi!" },
    { role: "assistant", content: "<think>\nThe user greets.\n</think>\n\nHello! How can I help?" },
    { role: "user", content: "Écris «bonjour» en 日本語 😀" },
  ],
];

const decodeOpts = (skip) => ({ skip_special_tokens: skip, clean_up_tokenization_spaces: false });
const meta = {
  node: process.version,
  unicode: process.versions.unicode,
  tokenizers: pkgVersion("@huggingface/tokenizers"),
  jinja: pkgVersion("@huggingface/jinja"),
  strings: corpus.length,
  models: {},
};
for (const name of Object.keys(MODELS)) {
  const { tokenizer, config } = load(name);
  const lines = [];
  let bytes = 0;
  for (const [kind, text] of corpus) {
    const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
    const dec = ids.length ? tokenizer.decode(ids, decodeOpts(true)) : "";
    const decSpecial = ids.length ? tokenizer.decode(ids, decodeOpts(false)) : "";
    lines.push(JSON.stringify([kind, text, ids, dec, decSpecial]));
    bytes += Buffer.byteLength(text);
  }
  writeFileSync(path.join(out, `${name}.encode.jsonl`), lines.join("\n") + "\n");

  // Random id sequences: partial UTF-8 sequences, specials in the middle.
  const size = tokenizer.get_vocab(true).size;
  const rnd = mulberry32(7);
  const dlines = [];
  for (let i = 0; i < 5000; i++) {
    const k = 1 + Math.floor(rnd() * 12);
    const ids = [];
    for (let j = 0; j < k; j++) {
      const r = rnd();
      // Mostly the single-byte tokens (ids of the 256 bytes come first).
      ids.push(r < 0.5 ? Math.floor(rnd() * 256) : r < 0.97 ? Math.floor(rnd() * size) : size - 1 - Math.floor(rnd() * 20));
    }
    dlines.push(JSON.stringify([ids, tokenizer.decode(ids, decodeOpts(true)), tokenizer.decode(ids, decodeOpts(false))]));
  }
  writeFileSync(path.join(out, `${name}.decode.jsonl`), dlines.join("\n") + "\n");

  // Chat templates, rendered as transformers does: the special tokens the
  // config names are variables (absent when null).
  const tmpl = new Template(config.chat_template);
  const vars = {};
  for (const k of ["bos_token", "eos_token", "pad_token"]) {
    const v = config[k];
    if (v != null) vars[k] = typeof v === "string" ? v : v.content;
  }
  const chats = [];
  for (const messages of CONVERSATIONS) {
    for (const [add, extra] of [[false, {}], [true, {}], [true, { enable_thinking: false }]]) {
      const text = tmpl.render({ ...vars, messages, add_generation_prompt: add, ...extra });
      chats.push({ messages, add_generation_prompt: add, extra, text });
    }
  }
  writeFileSync(path.join(out, `${name}.chat.json`), JSON.stringify(chats, null, 1));
  meta.models[name] = { dir: modelDir(name), bytes, vocab: size };
}
writeFileSync(path.join(out, "meta.json"), JSON.stringify(meta, null, 1));
console.log(`tokref: ${corpus.length} strings, ${Object.keys(MODELS).length} models -> ${out}`);
