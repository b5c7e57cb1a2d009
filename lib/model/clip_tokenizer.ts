/**
 * CLIP's byte-level BPE tokenizer (Radford et al. 2021; as transformers' CLIPTokenizer), for Stable
 * Diffusion exports (`vocab.json` + `merges.txt`).
 *
 * 1. Clean: Unicode NFC, every whitespace run → one space, trim, lower-case (the normaliser of
 *    transformers' CLIPTokenizerFast; ftfy's mojibake repair is not applied).
 * 2. Pre-tokenise with CLIP's pattern (case-insensitive):
 *        <|startoftext|> | <|endoftext|> | 's|'t|'re|'ve|'m|'ll|'d | \p{L}+ | \p{N} | [^\s\p{L}\p{N}]+
 *    i.e. the special tokens, English contractions, letter runs, single digits, and runs of other
 *    non-space characters. The special tokens map straight to their ids.
 * 3. Byte-to-unicode: each UTF-8 byte of a piece becomes one printable character — bytes
 *    `!`…`~`, `¡`…`¬`, `®`…`ÿ` stand for themselves, the other 68 bytes (in increasing order)
 *    map to U+0100, U+0101, … (GPT-2's table).
 * 4. BPE: the piece is a list of symbols, the last carrying the end-of-word suffix `</w>`
 *    (`"cat"` → `c a t</w>`). Repeatedly take the adjacent pair with the lowest rank in
 *    `merges.txt` (line order; a first `#version` line is skipped) and merge every occurrence of it,
 *    left to right, until no adjacent pair has a rank.
 * 5. ids = [bos] + vocab ids of the symbols (unknown → unk) truncated to maxLength − 2 + [eos],
 *    padded with the pad token to maxLength (SD-1.x pads with `<|endoftext|>`, SD-2 with `!`).
 *
 * @module
 */

import { fixedLength, type TokenizedText, type Tokenizer, TokenizerError } from "./tokenizer.ts";

/** Special-token names and padded length; defaults are CLIP's. */
export interface ClipTokenizerOptions {
  /** Default 77. */
  maxLength?: number;
  /** Default `<|startoftext|>`. */
  bosToken?: string;
  /** Default `<|endoftext|>`. */
  eosToken?: string;
  /** Default `<|endoftext|>`. */
  unkToken?: string;
  /** Default `<|endoftext|>` (CLIPTokenizer's default). */
  padToken?: string;
}

/** CLIP's pre-tokenisation pattern (see the module doc). */
export const CLIP_PATTERN =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2/CLIP byte → printable character table (index = byte value). */
export function bytesToUnicode(): string[] {
  const table = new Array<string>(256);
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable(b) ? b : 256 + n++);
  }
  return table;
}

/** Byte-level BPE with CLIP's `</w>` rule and fixed-length output. */
export class ClipTokenizer implements Tokenizer {
  readonly kind = "clip" as const;
  readonly maxLength: number;
  readonly #vocab: Map<string, number>;
  readonly #ranks = new Map<string, number>();
  readonly #byteChar = bytesToUnicode();
  readonly #cache = new Map<string, string[]>();
  readonly #bos: number;
  readonly #eos: number;
  readonly #unk: number;
  readonly #pad: number;
  readonly #special: Set<string>;
  readonly #encoder = new TextEncoder();

  /** `merges` is the text of `merges.txt` (or its lines); every special token must be in `vocab`. */
  constructor(
    vocab: Map<string, number>,
    merges: string | string[],
    options: ClipTokenizerOptions = {},
  ) {
    this.#vocab = vocab;
    this.maxLength = options.maxLength ?? 77;
    if (!Number.isInteger(this.maxLength) || this.maxLength < 2) {
      throw new TokenizerError(`tokenizer_config.json: model_max_length must be an integer ≥ 2`);
    }
    const id = (field: string, token: string) => {
      const v = vocab.get(token);
      if (v === undefined) {
        throw new TokenizerError(
          `tokenizer/vocab.json: ${field} ${JSON.stringify(token)} is not in the vocabulary`,
        );
      }
      return v;
    };
    const bos = options.bosToken ?? "<|startoftext|>", eos = options.eosToken ?? "<|endoftext|>";
    this.#bos = id("bos_token", bos);
    this.#eos = id("eos_token", eos);
    this.#unk = id("unk_token", options.unkToken ?? "<|endoftext|>");
    this.#pad = id("pad_token", options.padToken ?? "<|endoftext|>");
    this.#special = new Set([bos, eos, "<|startoftext|>", "<|endoftext|>"]);
    const lines = typeof merges === "string" ? merges.split(/\r?\n/) : merges;
    let rank = 0;
    lines.forEach((line, i) => {
      if (line.trim() === "" || (i === 0 && line.startsWith("#version"))) return;
      const parts = line.split(" ");
      if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
        throw new TokenizerError(`tokenizer/merges.txt: line ${i + 1} is not "left right"`);
      }
      const key = `${parts[0]} ${parts[1]}`;
      if (!this.#ranks.has(key)) this.#ranks.set(key, rank);
      rank++;
    });
  }

  /** The BPE symbols of `text` (after cleaning and pre-tokenisation), without bos/eos/padding. */
  tokenize(text: string): string[] {
    return this.#symbols(text).symbols.map((s) => s.symbol);
  }

  /** Fixed-length ids: `[bos, …, eos, pad…]`. */
  encode(text: string): Int32Array {
    const ids = this.split(text).tokens.map((t) => t.id);
    return fixedLength(ids, this.maxLength, { bos: this.#bos, eos: this.#eos, pad: this.#pad });
  }

  /**
   * The tokens of `text`, offsets into its cleaned form (step 1). Known = in the vocabulary and
   * not a special token. CLIP's vocabulary holds every one of the 256 byte symbols, so with a
   * complete vocabulary any non-space character gives known tokens (an emoji or a CJK character
   * becomes one token or a few byte tokens, which CLIP's text encoder was trained on); only a
   * vocabulary that lacks symbols gives unknown ones.
   */
  split(text: string): TokenizedText {
    const { clean, symbols } = this.#symbols(text);
    const tokens = symbols.map(({ symbol, start }) => {
      const id = this.#vocab.get(symbol);
      return { id: id ?? this.#unk, known: id !== undefined && !this.#special.has(symbol), start };
    });
    return { text: clean, tokens };
  }

  /** Steps 1–4: the cleaned text and its BPE symbols with their piece's offset in it. */
  #symbols(text: string): { clean: string; symbols: { symbol: string; start: number }[] } {
    const clean = text.normalize("NFC").replace(/\s+/g, " ").trim().toLowerCase();
    const symbols: { symbol: string; start: number }[] = [];
    for (const match of clean.matchAll(CLIP_PATTERN)) {
      const piece = match[0], start = match.index;
      if (this.#special.has(piece)) {
        symbols.push({ symbol: piece, start });
        continue;
      }
      let mapped = "";
      for (const byte of this.#encoder.encode(piece)) mapped += this.#byteChar[byte];
      for (const symbol of this.#bpe(mapped)) symbols.push({ symbol, start });
    }
    return { clean, symbols };
  }

  /** BPE of one byte-mapped piece (each character is one initial symbol). */
  #bpe(piece: string): string[] {
    const cached = this.#cache.get(piece);
    if (cached) return cached;
    let word = Array.from(piece);
    word[word.length - 1] += "</w>";
    while (word.length > 1) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.#ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best], second = word[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (i + 1 < word.length && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]);
          i += 1;
        }
      }
      word = merged;
    }
    if (this.#cache.size < 10_000) this.#cache.set(piece, word);
    return word;
  }
}
