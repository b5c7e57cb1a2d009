/**
 * What the text encoder reads of a prompt (lib/model/prompt.ts), on the shipped model's
 * word-level tokenizer and the CLIP BPE fixture: truncation stated (count, limit, dropped text),
 * prompts with no known token refused like empty ones, by kind (emoji, CJK, Arabic, punctuation,
 * unknown words, known words only past the window, special tokens typed by hand).
 */
import assert from "node:assert/strict";
import {
  analyzePrompt,
  assertPromptUsable,
  PromptError,
  truncationWarning,
} from "../lib/model/prompt.ts";
import { loadTokenizer } from "../lib/model/tokenizer.ts";
import { splitWords, wordsAt } from "../lib/model/word_tokenizer.ts";

const word = await loadTokenizer(
  new URL("../models/emoji-ldm/tokenizer", import.meta.url).pathname,
);
const clip = await loadTokenizer(new URL("./fixtures/clip_bpe", import.meta.url).pathname);

const APPLE_HEARTS = "twitter red apple" + " heart".repeat(11); // 14 tokens: the whole window

Deno.test("word tokenizer: a prompt that fills the window is read whole", () => {
  const { ids, report } = analyzePrompt(word, APPLE_HEARTS);
  assert.deepEqual(report, {
    tokens: 14,
    maxTokens: 14,
    truncated: false,
    droppedTokens: 0,
    droppedText: "",
    knownTokens: 14,
  });
  assert.deepEqual(ids, word.encode(APPLE_HEARTS));
  assert.equal(truncationWarning("prompt", report), undefined);
});

Deno.test("word tokenizer: words past the window are reported with the limit and their text", () => {
  const text = `${APPLE_HEARTS} Google dog-face, grinning!`;
  const { ids, report } = analyzePrompt(word, text);
  assert.deepEqual(report, {
    tokens: 18,
    maxTokens: 14,
    truncated: true,
    droppedTokens: 4,
    droppedText: "Google dog-face, grinning!",
    knownTokens: 14,
  });
  // what the encoder gets is exactly the 14-token prompt's ids: the rest is gone
  assert.deepEqual(ids, analyzePrompt(word, APPLE_HEARTS).ids);
  assert.equal(
    truncationWarning("prompt", report),
    'prompt is 18 tokens, the text encoder reads the first 14: "Google dog-face, grinning!" is ignored',
  );
});

Deno.test("prompts with no known token are refused like empty ones, naming the field", () => {
  const cases = [
    "🍎",
    "红苹果",
    "تفاحة حمراء",
    "!!! ???",
    "zzqx blorft", // words, none in the vocabulary
    "zzqx ".repeat(14) + "red apple", // the known words lie past the window
    "<|startoftext|> <unk>", // special tokens typed by hand are punctuation + unknown words
  ];
  for (const text of cases) {
    assert.equal(analyzePrompt(word, text).report.knownTokens, 0, text);
    assert.throws(
      () => assertPromptUsable(word, text),
      (e: unknown) =>
        e instanceof PromptError && e.field === "prompt" &&
        e.message.includes("has no token the model knows") &&
        e.message.includes("same image as an empty prompt"),
      text,
    );
  }
  assert.throws(() => assertPromptUsable(word, "  ", "negative"), {
    name: "PromptError",
    message: "negative must not be empty",
  });
  // one known word is enough; the others stay unknown (and count in tokens)
  const ok = assertPromptUsable(word, "twitter 🍎 zzqx");
  assert.deepEqual([ok.report.tokens, ok.report.knownTokens], [2, 1]);
});

Deno.test("CLIP BPE: known = a vocabulary token other than start/end/unknown", () => {
  const ok = analyzePrompt(clip, "A  red apple"); // a</w> red</w> appl e</w>
  assert.deepEqual([ok.report.tokens, ok.report.knownTokens, ok.report.truncated], [4, 4, false]);
  // the fixture's vocabulary lacks the byte symbols of these: all unknown
  for (const text of ["红苹果", "<|endoftext|>", "zz"]) {
    assert.throws(() => assertPromptUsable(clip, text), { name: "PromptError" }, text);
  }
  // truncation: 75 tokens fit; the dropped text is the normalised prompt from the first dropped word
  const long = `${"red ".repeat(75)}Apple  Hell`;
  const r = analyzePrompt(clip, long).report;
  assert.deepEqual(
    [r.tokens, r.maxTokens, r.truncated, r.droppedText],
    [75 + 2 + 3, 75, true, "apple hell"], // + appl e</w> and he l l</w>
  );
});

Deno.test("wordsAt gives splitWords' words (the training rule) with their offsets", () => {
  const chars = ["a", "Z", "7", " ", "-", "é", "İ", "K", "ß", "Σ", "🍎", "红", "\u0307", "_"];
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let n = 0; n < 500; n++) {
    const text = Array.from(
      { length: 1 + Math.floor(rand() * 12) },
      () => chars[Math.floor(rand() * chars.length)],
    ).join("");
    const reference = text.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 0);
    const at = wordsAt(text);
    assert.deepEqual(at.map((w) => w.word), reference, JSON.stringify(text));
    assert.deepEqual(splitWords(text), reference);
    for (const w of at) assert.match(text.slice(w.start).toLowerCase(), /^[a-z0-9]/);
  }
});
