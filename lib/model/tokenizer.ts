/**
 * Prompt → token ids, behind one interface, and the loader that reads an optimum-style
 * `tokenizer/` folder and picks the implementation:
 *
 * - `tokenizer_config.json` `tokenizer_class` "WordTokenizer" → {@link WordTokenizer} (the
 *   project's default model: `vocab.json` only);
 * - "CLIPTokenizer" / "CLIPTokenizerFast" → {@link ClipTokenizer} (Stable Diffusion exports:
 *   `vocab.json` + `merges.txt`);
 * - no class given: CLIP when `merges.txt` exists, else word-level.
 *
 * `model_max_length` sets the padded length (defaults: 16 word-level, 77 CLIP). Special tokens
 * (`bos_token`, `eos_token`, `unk_token`, `pad_token`, as strings or `{"content": …}` objects) come
 * from `tokenizer_config.json`, overridden by `special_tokens_map.json` when present.
 *
 * @module
 */

import { ClipTokenizer, type ClipTokenizerOptions } from "./clip_tokenizer.ts";
import { WordTokenizer } from "./word_tokenizer.ts";

/** Turns a prompt into the fixed-length id sequence the text encoder takes. */
export interface Tokenizer {
  /** Which algorithm this is. */
  readonly kind: "word" | "clip";
  /** Length of every encoded sequence (the text encoder's sequence length). */
  readonly maxLength: number;
  /** `[start, tokens…, end]`, truncated keeping `end` last, padded to `maxLength`. */
  encode(text: string): Int32Array;
  /**
   * The prompt's tokens before truncation, without start/end/padding: `encode` keeps the first
   * `maxLength − 2` of them. See {@link TokenizedText}.
   */
  split(text: string): TokenizedText;
}

/** One token of a prompt. */
export interface PromptToken {
  /** Its id (the unknown token's id when the vocabulary lacks it). */
  id: number;
  /** Whether it carries content: in the vocabulary and not a special token. */
  known: boolean;
  /** UTF-16 offset in {@link TokenizedText.text} where the word it belongs to starts. */
  start: number;
}

/** A prompt as a tokenizer reads it. */
export interface TokenizedText {
  /** The text the offsets refer to: the prompt itself, or its normalised form (CLIP). */
  text: string;
  tokens: PromptToken[];
}

/**
 * `[bos, ids…, eos]` truncated to `maxLength` (the first `maxLength − 2` ids kept, `eos` always
 * last) and padded with `pad`: the fixed-length sequence both tokenizers produce.
 */
export function fixedLength(
  ids: readonly number[],
  maxLength: number,
  special: { bos: number; eos: number; pad: number },
): Int32Array {
  const out = new Int32Array(maxLength).fill(special.pad);
  const kept = ids.slice(0, maxLength - 2);
  out[0] = special.bos;
  out.set(kept, 1);
  out[kept.length + 1] = special.eos;
  return out;
}

/** A tokenizer folder's files, as text (`undefined` where the file is absent). */
export interface TokenizerFiles {
  vocab: string;
  merges?: string;
  tokenizerConfig?: string;
  specialTokensMap?: string;
}

/** A tokenizer folder that cannot be used; the message names the file and field. */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerError";
  }
}

type Json = Record<string, unknown>;

function parseJsonObject(text: string, file: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TokenizerError(`${file}: expected a JSON object`);
  }
  return v as Json;
}

/** Parses `vocab.json` (token → id); every id must be a non-negative integer. */
export function parseVocab(text: string, file = "tokenizer/vocab.json"): Map<string, number> {
  const obj = parseJsonObject(text, file);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(obj)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
      throw new TokenizerError(
        `${file}: id of ${JSON.stringify(token)} must be a non-negative integer`,
      );
    }
    vocab.set(token, id);
  }
  return vocab;
}

/** A special-token field as a string: `"<x>"` or `{"content": "<x>", …}` (HF AddedToken). */
function tokenField(obj: Json, key: string, file: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "object" && !Array.isArray(v) && typeof (v as Json).content === "string") {
    return (v as Json).content as string;
  }
  throw new TokenizerError(`${file}: ${key} must be a string or {"content": string}`);
}

/**
 * Builds the right tokenizer from a folder's file contents (pure; {@link loadTokenizer} reads the
 * files). `where` prefixes file names in error messages.
 */
export function createTokenizer(files: TokenizerFiles, where = "tokenizer"): Tokenizer {
  const cfgFile = `${where}/tokenizer_config.json`;
  const mapFile = `${where}/special_tokens_map.json`;
  const config = files.tokenizerConfig === undefined
    ? {}
    : parseJsonObject(files.tokenizerConfig, cfgFile);
  const map = files.specialTokensMap === undefined
    ? {}
    : parseJsonObject(files.specialTokensMap, mapFile);

  const cls = config.tokenizer_class;
  let kind: "word" | "clip";
  if (cls === undefined || cls === null) kind = files.merges === undefined ? "word" : "clip";
  else if (cls === "WordTokenizer") kind = "word";
  else if (cls === "CLIPTokenizer" || cls === "CLIPTokenizerFast") kind = "clip";
  else {
    throw new TokenizerError(
      `${cfgFile}: tokenizer_class ${
        JSON.stringify(cls)
      } is not supported (WordTokenizer, CLIPTokenizer)`,
    );
  }

  let maxLength = kind === "word" ? 16 : 77;
  const mml = config.model_max_length;
  if (mml !== undefined && mml !== null) {
    if (typeof mml !== "number" || !Number.isInteger(mml) || mml < 2) {
      throw new TokenizerError(`${cfgFile}: model_max_length must be an integer ≥ 2`);
    }
    // transformers writes a huge sentinel (1e30) when no limit was set: keep the default then.
    if (mml <= 1_000_000) maxLength = mml;
  }

  const vocab = parseVocab(files.vocab, `${where}/vocab.json`);
  if (kind === "word") return new WordTokenizer(vocab, maxLength);

  if (files.merges === undefined) {
    throw new TokenizerError(`${where}/merges.txt: not found (needed by CLIPTokenizer)`);
  }
  const special = (key: string) =>
    tokenField(map, key, mapFile) ?? tokenField(config, key, cfgFile);
  const options: ClipTokenizerOptions = { maxLength };
  const bos = special("bos_token"), eos = special("eos_token");
  const unk = special("unk_token"), pad = special("pad_token");
  if (bos !== undefined) options.bosToken = bos;
  if (eos !== undefined) options.eosToken = eos;
  if (unk !== undefined) options.unkToken = unk;
  if (pad !== undefined) options.padToken = pad;
  return new ClipTokenizer(vocab, files.merges, options);
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new TokenizerError(`${path}: cannot read (${(e as Error).message})`);
  }
}

/** Reads `dir` (a model's `tokenizer/` folder) and returns the tokenizer it describes. */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const base = dir.replace(/\/+$/, "");
  const vocab = await readOptional(`${base}/vocab.json`);
  if (vocab === undefined) throw new TokenizerError(`${base}/vocab.json: not found`);
  const files: TokenizerFiles = { vocab };
  const merges = await readOptional(`${base}/merges.txt`);
  const tokenizerConfig = await readOptional(`${base}/tokenizer_config.json`);
  const specialTokensMap = await readOptional(`${base}/special_tokens_map.json`);
  if (merges !== undefined) files.merges = merges;
  if (tokenizerConfig !== undefined) files.tokenizerConfig = tokenizerConfig;
  if (specialTokensMap !== undefined) files.specialTokensMap = specialTokensMap;
  return createTokenizer(files, base);
}
