// corpus.mjs: a deterministic corpus of strings for the tokenizer
// exactness tests (model/tokenizer). The same seed gives the same strings
// on every machine with the same node: a small PRNG, no Math.random, no
// locale. Random code points are drawn among those assigned in node's
// Unicode version (meta.json records it), so another node may give a
// slightly different corpus; the reference is always made from the corpus
// it writes, so the comparison stays exact.

// mulberry32 is a tiny seeded PRNG returning floats in [0, 1).
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the of and to in is was for that with as on by at from his her they it " +
  "be this an which or had are not but were their has have been one all " +
  "would there what so up out if about who get go me when make can like " +
  "time no just him know take people into year your good some could them " +
  "see other than then now look only come its over think also back after " +
  "use two how our work first well way even new want because any these give " +
  "day most us apple banana market teacher student river mountain computer " +
  "tokenizer encoding unbelievable internationalization Hugging Face Qwen " +
  "Llama GPT naïve café résumé coöperate façade Zürich São Paulo Kraków " +
  "straße Ærøskøbing Ελλάδα Москва 東京 北京 서울 ภาษาไทย हिन्दी العربية עברית"
).split(" ");
const NAMES = ["Natalia", "Weng", "Betty", "Julie", "James", "Mark", "Alexis",
  "Tina", "Randy", "Joy", "Jean", "Mr. Smith", "O'Brien", "Zoë", "José", "Ayşe"];
const THINGS = ["clips", "apples", "books", "pages", "dollars", "eggs", "cookies",
  "marbles", "minutes", "miles", "tickets", "cupcakes", "stamps", "pencils"];
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T",
  "'RE", "'Ve", "'M", "'LL", "'Ll", "'D", "n't", "N'T", "’s", "’ll", "'", "''"];
const SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>",
  "</think>", "<tool_call>", "<|begin_of_text|>", "<|eot_id|>",
  "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_7|>",
  "<|im_st", "<|", "|>", "<|eot_id", "< |im_end|>"];
const SPACES = [" ", "  ", "\t", "\n", "\r\n", "\n\n", "\r", "\u00a0", "\u3000",
  "\u2003", "\u2009", "\u200b", "\u0085", "\u2028", "\ufeff", "\u000b", "\u000c",
  "\u1680", "\u202f", "\u205f"];
const EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "🏳️‍🌈", "❤️", "🤖", "✨", "🧪", "🔥",
  "1️⃣", "🙂‍↔️", "🫠", "🦀", "🐍", "⌚", "☕"];
const CODE = [
  "def add(a, b):\n    return a + b\n",
  "func main() {\n\tfmt.Println(\"hi\")\n}\n",
  "for (let i = 0; i < n; i++) { sum += a[i]; }",
  "if x == 0 {\n\t\treturn nil, err\n\t}",
  "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;",
  "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }",
  "class Foo:\n    def __init__(self):\n        self.x = [1, 2, 3]\n\n\n",
  "const re = /^[a-z]+$/i; // regex\n",
  "x = {'key': \"value\", 'n': 3.14e-10}",
  "    \n        \n            deeply_indented()\n",
  "$ make test && go vet ./...\n",
  "<div class=\"a\">&nbsp;&lt;tag&gt;</div>",
];
const COMBINING = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0303", "\u030a",
  "\u0323", "\u0307", "\u0338", "\u20d7", "\u0345", "\u05b7", "\u0e31", "\u093f"];

// assigned reports whether a code point is a character of the running
// Unicode version (not unassigned, not a surrogate).
const UNASSIGNED = /\p{Cn}|\p{Cs}/u;
function assigned(cp) {
  return !UNASSIGNED.test(String.fromCodePoint(cp));
}

// Ranges random code points are drawn from (with weights by repetition).
const RANGES = [
  [0x20, 0x7e], [0x20, 0x7e], [0x00, 0x1f], [0x80, 0xff], [0x100, 0x24f],
  [0x250, 0x2ff], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x530, 0x58f], [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f],
  [0xe00, 0xe7f], [0x10a0, 0x10ff], [0x1100, 0x11ff], [0x1e00, 0x1eff],
  [0x2000, 0x206f], [0x2070, 0x209f], [0x20a0, 0x20cf], [0x2100, 0x214f],
  [0x2150, 0x218f], [0x2190, 0x21ff], [0x2200, 0x22ff], [0x2460, 0x24ff],
  [0x2500, 0x257f], [0x3000, 0x303f], [0x3040, 0x30ff], [0x4e00, 0x9fff],
  [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xfb00, 0xfb4f], [0xfe00, 0xfe0f],
  [0xfe70, 0xfeff], [0xff00, 0xffef], [0xfff0, 0xfffd], [0x10000, 0x1007f],
  [0x1d400, 0x1d7ff], [0x1f300, 0x1f5ff], [0x1f600, 0x1f64f],
  [0x1f900, 0x1f9ff], [0x20000, 0x2a6df], [0xe000, 0xe0ff], [0x0, 0x10ffff],
];

export function makeCorpus(n, seed = 12) {
  const rnd = mulberry32(seed);
  const int = (k) => Math.floor(rnd() * k);
  const pick = (a) => a[int(a.length)];
  const num = () => {
    const r = rnd();
    if (r < 0.5) return String(int(100));
    if (r < 0.8) return String(int(100000));
    if (r < 0.9) return String(int(1e9)) + String(int(1e9));
    return (rnd() * 1000).toFixed(int(4));
  };
  const word = () => {
    let w = pick(WORDS);
    const r = rnd();
    if (r < 0.1) w = w[0].toUpperCase() + w.slice(1);
    else if (r < 0.13) w = w.toUpperCase();
    if (rnd() < 0.12) w += pick(CONTRACTIONS);
    return w;
  };
  const sentence = () => {
    const k = 3 + int(14);
    const ws = [];
    for (let i = 0; i < k; i++) ws.push(rnd() < 0.1 ? num() : word());
    let s = ws.join(" ");
    s = s[0].toUpperCase() + s.slice(1);
    return s + pick([".", ".", ".", "?", "!", "...", ":", ";", ",", " —", "?!"]);
  };
  const prose = () => {
    const k = 1 + int(5);
    const parts = [];
    for (let i = 0; i < k; i++) parts.push(sentence());
    return parts.join(pick([" ", " ", "  ", "\n", "\n\n"]));
  };
  const arithmetic = () => {
    const a = num(), b = num();
    const op = pick(["+", "-", "*", "/", " + ", " - ", " × ", " ÷ ", "^", "%"]);
    const r = rnd();
    if (r < 0.3) return `${a}${op}${b}=`;
    if (r < 0.6) return `What is ${a}${op}${b}? The answer is ${num()}.`;
    if (r < 0.8) return `(${a}${op}${b})${pick(["*", "+"])}${num()} = ${num()}\n`;
    return `${num()}${num()}${num()}${num()}`;
  };
  const gsm8k = () => {
    const n1 = pick(NAMES), n2 = pick(NAMES), t = pick(THINGS);
    const a = 2 + int(90), b = 2 + int(40), c = a * b;
    const q = `${n1} sold ${a} ${t} to her friends in April, and then she sold ` +
      `${pick(["half", "twice", "3 times"])} as many ${t} in May. ${n2} ` +
      `has $${a}.${int(100)} and spends ${b}% of it. How many ${t} did ${n1} sell altogether?`;
    const ans = `${n1} sold ${a} * ${b} = <<${a}*${b}=${c}>>${c} ${t}.\n` +
      `${n2}'s total is ${a} + ${c} = <<${a}+${c}=${a + c}>>${a + c}.\n#### ${a + c}`;
    return pick([q, ans, q + "\n" + ans, `Question: ${q}\nAnswer:`]);
  };
  const code = () => {
    let s = pick(CODE);
    if (rnd() < 0.5) s += pick(CODE);
    if (rnd() < 0.3) s = s.replace(/\n/g, "\r\n");
    return s;
  };
  const randomCodePoint = () => {
    for (;;) {
      const [lo, hi] = pick(RANGES);
      const cp = lo + int(hi - lo + 1);
      if (assigned(cp)) return String.fromCodePoint(cp);
    }
  };
  const unicode = () => {
    const k = 1 + int(30);
    let s = "";
    for (let i = 0; i < k; i++) {
      const r = rnd();
      if (r < 0.55) s += randomCodePoint();
      else if (r < 0.65) s += pick(COMBINING);
      else if (r < 0.75) s += pick(EMOJI);
      else if (r < 0.85) s += pick(SPACES);
      else if (r < 0.92) s += word();
      else s += "\ufeff";
    }
    return s;
  };
  const decomposed = () => {
    // Letters followed by combining marks: NFC composes some of them.
    let s = "";
    const k = 1 + int(8);
    for (let i = 0; i < k; i++) {
      s += pick(["e", "a", "o", "u", "E", "A", "n", "c", "i", "ᄀ", "가", "α", "и", "Å", "s"]);
      const m = int(3);
      for (let j = 0; j < m; j++) s += pick(COMBINING);
      if (rnd() < 0.3) s += pick([" ", "", "'", "\n"]);
    }
    return rnd() < 0.5 ? s.normalize("NFD") : s;
  };
  const whitespace = () => {
    let s = "";
    const k = 1 + int(8);
    for (let i = 0; i < k; i++) {
      const r = rnd();
      if (r < 0.4) s += pick(SPACES).repeat(1 + int(rnd() < 0.2 ? 300 : 12));
      else if (r < 0.6) s += " ".repeat(1 + int(40));
      else if (r < 0.7) s += "\n".repeat(1 + int(10));
      else if (r < 0.8) s += num();
      else s += word();
    }
    return s;
  };
  const digits = () => {
    let s = "";
    const k = 1 + int(60);
    for (let i = 0; i < k; i++) s += "0123456789"[int(10)];
    const r = rnd();
    if (r < 0.2) return s + pick(["٣٤٥", "१२३", "１２３", "½", "²", "Ⅻ", "𝟙𝟚"]);
    if (r < 0.4) return `${word()} ${s}${pick([".", ",", "", " "])}${s.slice(0, 3)}`;
    return s;
  };
  const specials = () => {
    let s = "";
    const k = 1 + int(6);
    for (let i = 0; i < k; i++) {
      s += pick(SPECIALS);
      if (rnd() < 0.7) s += pick([" ", "", "\n", "user\n", "assistant", word(), sentence()]);
    }
    return s;
  };
  const mixed = () => {
    const gens = [prose, arithmetic, gsm8k, code, unicode, decomposed, whitespace, digits, specials];
    let s = "";
    const k = 2 + int(4);
    for (let i = 0; i < k; i++) s += pick(gens)() + pick(["", " ", "\n"]);
    return s;
  };
  const kinds = [
    ["prose", prose, 5], ["arithmetic", arithmetic, 3], ["gsm8k", gsm8k, 3],
    ["code", code, 2], ["unicode", unicode, 4], ["decomposed", decomposed, 1],
    ["whitespace", whitespace, 2], ["digits", digits, 1], ["specials", specials, 1],
    ["mixed", mixed, 2],
  ];
  const weighted = [];
  for (const [name, fn, w] of kinds) for (let i = 0; i < w; i++) weighted.push([name, fn]);
  const out = [
    // Fixed edge cases first.
    ["edge", ""], ["edge", " "], ["edge", "\ufeff"], ["edge", "\ufeffHello"],
    ["edge", "a\ufeff b"], ["edge", "   \n"], ["edge", "\n\n\n   x"],
    ["edge", "it's IT'S It'Ll we'VE"], ["edge", "1234567"], ["edge", "\r\n\r\n"],
    ["edge", " ".repeat(1000)], ["edge", "x" + " ".repeat(999) + "y"],
    ["edge", "<|im_start|>"], ["edge", "<|endoftext|><|endoftext|>"],
  ];
  while (out.length < n) {
    const [name, fn] = pick(weighted);
    out.push([name, fn()]);
  }
  return out;
}
