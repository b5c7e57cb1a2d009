/**
 * What the text encoder actually reads of a prompt. The encoder takes a fixed number of tokens
 * (`model_max_length`: 16 for the default model, 77 for CLIP), two of them the start and end
 * tokens, so a longer prompt is **truncated**: the words past the window do not reach the model.
 * The project's rule: never silently. {@link analyzePrompt} reports what was kept and dropped (the
 * CLI prints a warning, the service states it in the answer's plan and its log), and
 * {@link assertPromptUsable} refuses, like an empty prompt, a prompt with no token the vocabulary
 * knows (for the word-level tokenizer: no lower-case English word of its vocabulary, e.g. "🍎",
 * "红苹果", "!!! ???"), which would silently give the unconditional image.
 *
 * For CLIP BPE, "known" means a vocabulary token other than start/end/unknown/padding; CLIP's
 * vocabulary has a token for every byte, so any non-blank prompt has known tokens there (emoji and
 * non-Latin scripts become byte-level tokens the encoder was trained on), and only a vocabulary
 * that lacks symbols makes a prompt unusable.
 *
 * @module
 */
import type { Tokenizer } from "./tokenizer.ts";

/** What the text encoder reads of one prompt (the service reports it in the plan). */
export interface PromptReport {
  /** Tokens of the prompt, without the start and end tokens. */
  tokens: number;
  /** Most tokens the text encoder reads (`model_max_length − 2`). */
  maxTokens: number;
  /** Whether tokens past `maxTokens` were dropped. */
  truncated: boolean;
  /** How many tokens were dropped (0 when not truncated). */
  droppedTokens: number;
  /**
   * The prompt's text from the first word not fully read to the end, as the tokenizer read it
   * (CLIP: normalised and lower-cased); "" when nothing was dropped.
   */
  droppedText: string;
  /** Kept tokens the vocabulary knows (not unknown, not special); 0 = the unconditional image. */
  knownTokens: number;
}

/** A prompt's fixed-length ids (what `tokenizer.encode` gives) and its report. */
export interface PromptAnalysis {
  /** Int32 ids of length `tokenizer.maxLength`: `[start, kept tokens…, end, padding…]`. */
  ids: Int32Array;
  report: PromptReport;
}

/** A prompt the model cannot use; `field` names the request field or flag (without dashes). */
export class PromptError extends Error {
  override name = "PromptError";
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** Tokenizes `text` and reports what the text encoder reads of it (pure). */
export function analyzePrompt(tokenizer: Tokenizer, text: string): PromptAnalysis {
  const { text: read, tokens } = tokenizer.split(text);
  const maxTokens = tokenizer.maxLength - 2;
  const kept = tokens.slice(0, maxTokens);
  const dropped = tokens.length - kept.length;
  return {
    ids: tokenizer.encode(text),
    report: {
      tokens: tokens.length,
      maxTokens,
      truncated: dropped > 0,
      droppedTokens: dropped,
      droppedText: dropped > 0 ? read.slice(tokens[maxTokens].start).trim() : "",
      knownTokens: kept.filter((t) => t.known).length,
    },
  };
}

/** `text` shortened to `max` code points for messages, JSON-quoted. */
export function quoteExcerpt(text: string, max = 40): string {
  const points = [...text];
  return JSON.stringify(points.length > max ? `${points.slice(0, max).join("")}…` : text);
}

/**
 * Checks that `text` gives the model something to read: not blank, and at least one kept token
 * the vocabulary knows. Returns the analysis (for the truncation report); throws
 * {@link PromptError} naming `field` otherwise.
 */
export function assertPromptUsable(
  tokenizer: Tokenizer,
  text: string,
  field = "prompt",
): PromptAnalysis {
  if (text.trim() === "") throw new PromptError(field, `${field} must not be empty`);
  const analysis = analyzePrompt(tokenizer, text);
  if (analysis.report.knownTokens === 0) {
    const rule = tokenizer.kind === "word"
      ? "this model's tokenizer reads English words (letters a-z and digits) of its vocabulary"
      : "none of its tokens is in this model's vocabulary";
    throw new PromptError(
      field,
      `${field} ${quoteExcerpt(text)} has no token the model knows (${rule}); ` +
        "it would give the same image as an empty prompt",
    );
  }
  return analysis;
}

/**
 * The one-line warning for a truncated prompt, or undefined when nothing was dropped:
 * `prompt is 18 tokens, the text encoder reads the first 14: "google dog face grinning" is
 * ignored`.
 */
export function truncationWarning(field: string, report: PromptReport): string | undefined {
  if (!report.truncated) return undefined;
  return `${field} is ${report.tokens} tokens, the text encoder reads the first ` +
    `${report.maxTokens}: ${quoteExcerpt(report.droppedText, 60)} is ignored`;
}
