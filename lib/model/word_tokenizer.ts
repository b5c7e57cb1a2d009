/**
 * The word-level tokenizer of the project's default model, identical to its training code
 * (models/emoji-ldm/recipe: `dataset.words` builds the captions, `train.tokenize` the ids):
 *
 *     words(text) = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
 *     ids         = [<|startoftext|>] + [vocab.get(w, <unk>) for w in words]
 *     ids         = ids[: maxLength − 1] + [<|endoftext|>]        (end token always kept)
 *     padded with <pad> to maxLength (16 for the default model)
 *
 * The empty prompt gives `[<|startoftext|>, <|endoftext|>, <pad>…]`, the unconditional input the
 * model was trained with (caption dropout).
 *
 * @module
 */

import { fixedLength, type TokenizedText, type Tokenizer, TokenizerError } from "./tokenizer.ts";

/** The special tokens `vocab.json` must contain. */
export const WORD_SPECIAL_TOKENS = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"] as const;

/** Lower-cases and splits on every run of characters outside [a-z0-9] (training's `words`). */
export function splitWords(text: string): string[] {
  return wordsAt(text).map((w) => w.word);
}

/**
 * {@link splitWords} with each word's UTF-16 offset in `text`. Lower-casing one code point at a
 * time equals lower-casing the whole string here: the only context-dependent mapping (Greek final
 * sigma) gives no letter of [a-z0-9] either way.
 */
export function wordsAt(text: string): { word: string; start: number }[] {
  const out: { word: string; start: number }[] = [];
  let word = "", start = 0, i = 0;
  for (const ch of text) {
    for (const c of ch.toLowerCase()) {
      if ((c >= "a" && c <= "z") || (c >= "0" && c <= "9")) {
        if (!word) start = i;
        word += c;
      } else if (word) {
        out.push({ word, start });
        word = "";
      }
    }
    i += ch.length;
  }
  if (word) out.push({ word, start });
  return out;
}

/** Word → id lookup with start/end/pad/unk tokens; see the module doc for the exact rule. */
export class WordTokenizer implements Tokenizer {
  readonly kind = "word" as const;
  readonly maxLength: number;
  readonly #vocab: Map<string, number>;
  readonly #pad: number;
  readonly #unk: number;
  readonly #bos: number;
  readonly #eos: number;

  /** `vocab` maps word → id and must hold the four {@link WORD_SPECIAL_TOKENS}. */
  constructor(vocab: Map<string, number>, maxLength: number) {
    for (const t of WORD_SPECIAL_TOKENS) {
      if (!vocab.has(t)) {
        throw new TokenizerError(`tokenizer/vocab.json: missing special token ${t}`);
      }
    }
    if (!Number.isInteger(maxLength) || maxLength < 2) {
      throw new TokenizerError(`tokenizer_config.json: model_max_length must be an integer ≥ 2`);
    }
    this.maxLength = maxLength;
    this.#vocab = vocab;
    this.#pad = vocab.get("<pad>")!;
    this.#unk = vocab.get("<unk>")!;
    this.#bos = vocab.get("<|startoftext|>")!;
    this.#eos = vocab.get("<|endoftext|>")!;
  }

  /** Fixed-length ids for `text`. */
  encode(text: string): Int32Array {
    const ids = this.split(text).tokens.map((t) => t.id);
    return fixedLength(ids, this.maxLength, { bos: this.#bos, eos: this.#eos, pad: this.#pad });
  }

  /** Every word of `text` (offsets into `text` itself); known = in the vocabulary. */
  split(text: string): TokenizedText {
    const tokens = wordsAt(text).map(({ word, start }) => {
      const id = this.#vocab.get(word);
      // the special tokens contain "<", "|" or ">", so no word is one
      return { id: id ?? this.#unk, known: id !== undefined, start };
    });
    return { text, tokens };
  }
}
