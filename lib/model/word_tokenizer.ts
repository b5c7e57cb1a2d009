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

import { type Tokenizer, TokenizerError } from "./tokenizer.ts";

/** The special tokens `vocab.json` must contain. */
export const WORD_SPECIAL_TOKENS = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"] as const;

/** Lower-cases and splits on every run of characters outside [a-z0-9] (training's `words`). */
export function splitWords(text: string): string[] {
  return text.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 0);
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
    const ids = new Int32Array(this.maxLength).fill(this.#pad);
    const words = splitWords(text).slice(0, this.maxLength - 2);
    ids[0] = this.#bos;
    words.forEach((w, i) => (ids[i + 1] = this.#vocab.get(w) ?? this.#unk));
    ids[words.length + 1] = this.#eos;
    return ids;
  }
}
