// bench.mjs REFDIR MODEL [PASSES [KIND]]: times the JS reference encoding
// the corpus of REFDIR/<MODEL>.encode.jsonl (only the strings of KIND when
// given, e.g. "prose"); prints JSON {bytes, strings, passes_ms} (the first
// pass starts with an empty cache).
import { readFileSync } from "node:fs";
import path from "node:path";
import { load } from "./models.mjs";

const [dir, name, passesArg, kind] = process.argv.slice(2);
const passes = Number(passesArg ?? 3);
const texts = readFileSync(path.join(dir, `${name}.encode.jsonl`), "utf8")
  .split("\n").filter((l) => l).map((l) => JSON.parse(l))
  .filter((r) => !kind || r[0] === kind).map((r) => r[1]);
const t0 = performance.now();
const { tokenizer } = load(name);
const loadMs = performance.now() - t0;
let bytes = 0;
for (const t of texts) bytes += Buffer.byteLength(t);
const passesMs = [];
let ids = 0;
for (let p = 0; p < passes; p++) {
  const start = performance.now();
  for (const t of texts) ids += tokenizer.encode(t, { add_special_tokens: false }).ids.length;
  passesMs.push(performance.now() - start);
}
console.log(JSON.stringify({ model: name, node: process.version, bytes, strings: texts.length, load_ms: loadMs, passes_ms: passesMs, ids }));
