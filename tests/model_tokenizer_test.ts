import assert from "node:assert/strict";
import { bytesToUnicode, ClipTokenizer } from "../lib/model/clip_tokenizer.ts";
import {
  createTokenizer,
  loadTokenizer,
  parseVocab,
  TokenizerError,
} from "../lib/model/tokenizer.ts";
import { splitWords, WordTokenizer } from "../lib/model/word_tokenizer.ts";

const fixture = (p: string) => new URL(`./fixtures/${p}`, import.meta.url).pathname;

// ---------------------------------------------------------------- word-level (default model)

Deno.test("word tokenizer equals the training code's tokenize() (expected.json from the recipe)", async () => {
  const tok = await loadTokenizer(fixture("word_tokenizer"));
  assert.equal(tok.kind, "word");
  assert.equal(tok.maxLength, 16);
  const expected: { max_tokens: number; cases: { prompt: string; ids: number[] }[] } = JSON.parse(
    await Deno.readTextFile(fixture("word_tokenizer/expected.json")),
  );
  assert.equal(expected.max_tokens, tok.maxLength);
  for (const c of expected.cases) {
    assert.deepEqual(Array.from(tok.encode(c.prompt)), c.ids, JSON.stringify(c.prompt));
  }
});

Deno.test("word tokenizer: splitting, unknown words, truncation keeps the end token", () => {
  assert.deepEqual(splitWords("Crème-brûlée, 2nd TRY!"), [
    "cr",
    "me",
    "br",
    "l",
    "e",
    "2nd",
    "try",
  ]);
  const vocab = new Map([["<pad>", 0], ["<unk>", 1], ["<|startoftext|>", 2], ["<|endoftext|>", 3], [
    "x",
    4,
  ]]);
  const tok = new WordTokenizer(vocab, 5);
  assert.deepEqual(Array.from(tok.encode("X y")), [2, 4, 1, 3, 0]);
  assert.deepEqual(Array.from(tok.encode("x x x x x x")), [2, 4, 4, 4, 3]);
  assert.throws(() => new WordTokenizer(new Map([["<pad>", 0]]), 16), {
    name: "TokenizerError",
    message: /<unk>/,
  });
});

// ---------------------------------------------------------------- CLIP BPE

Deno.test("bytes_to_unicode: printable bytes are themselves, the rest count up from U+0100", () => {
  const t = bytesToUnicode();
  assert.equal(t.length, 256);
  assert.equal(new Set(t).size, 256);
  assert.equal(t[0x61], "a");
  assert.equal(t[0xe9], "é"); // 0xE9 lies in ®…ÿ
  assert.equal(t[0x00], "\u0100"); // first non-printable byte
  assert.equal(t[0x0a], "\u010a"); // "Ċ", GPT-2's newline
  assert.equal(t[0x20], "\u0120"); // "Ġ", GPT-2's space: bytes 0…32 are n = 0…32
  assert.equal(t[0x7f], "\u0121"); // 127 is n = 33
  assert.equal(t[0xad], "\u0143"); // soft hyphen 173 is the last, n = 67
});

/*
 * Hand derivation for tests/fixtures/clip_bpe (ids = line order of vocab.json, ranks = line order
 * of merges.txt after the #version line):
 *   ranks: 0 "a p", 1 "p l", 2 "l e</w>", 3 "r e", 4 "re d</w>", 5 "ap pl", 6 "h e", 7 "l l",
 *          8 "he ll", 9 "! !</w>", 10 "' t</w>", 11 "Ã ©</w>", 12 "c a"
 *   ids:   a 0, a</w> 1, b 2, c 3, d 4, e 5, e</w> 6, f 7, h 8, l 9, n</w> 10, o 11, o</w> 12,
 *          p 13, r 14, t</w> 15, ' 16, ! 17, 0</w> 18, 2</w> 19, 4</w> 20, ð 21, Ł 22, ĺ 23,
 *          Ģ</w> 24, Ã 25, ap 26, pl 27, le</w> 28, re 29, red</w> 30, appl 31, he 32, ll 33,
 *          hell 34, !!</w> 35, 't</w> 36, Ã©</w> 37, ca 38, d</w> 39, <|startoftext|> 40,
 *          <|endoftext|> 41 (also unk and pad in tokenizer_config.json)
 *
 * "a red apple" → pieces "a", "red", "apple"
 *   "a":     [a</w>] (one symbol, no pair)                                  → 1
 *   "red":   [r e d</w>]; pairs r·e(3) e·d</w>(–) → [re d</w>]; re·d</w>(4) → [red</w>] → 30
 *   "apple": [a p p l e</w>]; a·p(0) p·p(–) p·l(1) l·e</w>(2) → merge a·p → [ap p l e</w>];
 *            ap·p(–) p·l(1) l·e</w>(2) → merge p·l → [ap pl e</w>] (so l·e</w> is gone);
 *            ap·pl(5) pl·e</w>(–) → [appl e</w>]; appl·e</w>(–) stop          → 31 6
 *   → [40, 1, 30, 31, 6, 41, then 41 × 71 padding]
 * "Hello!! 2024" → lower "hello!! 2024" → pieces "hello", "!!", "2", "0", "2", "4" (digits single)
 *   "hello": [h e l l o</w>]; h·e(6) e·l(–) l·l(7) l·o</w>(–) → [he l l o</w>]; he·l(–) l·l(7)
 *            → [he ll o</w>]; he·ll(8) → [hell o</w>]; no rank                → 34 12
 *   "!!":    [! !</w>]; !·!</w>(9) → [!!</w>]                                  → 35
 *   digits:  2</w> 0</w> 2</w> 4</w>                                          → 19 18 19 20
 * "don't" → pieces "don" (letters stop at the apostrophe), "'t" (contraction)
 *   "don":   [d o n</w>]; d·o(–) o·n</w>(–)                                   → 4 11 10
 *   "'t":    [' t</w>]; '·t</w>(10)                                           → 36
 * "café 😀" → pieces "café" (é is a letter), "😀" (not letter/number/space)
 *   "café":  UTF-8 63 61 66 C3 A9 → [c a f Ã ©</w>] (C3 → "Ã", A9 → "©", both printable);
 *            c·a(12) a·f(–) f·Ã(–) Ã·©</w>(11) → lowest 11 → [c a f Ã©</w>];
 *            c·a(12) → [ca f Ã©</w>]                                         → 38 7 37
 *   "😀":    UTF-8 F0 9F 98 80 → F0 "ð" (printable); 9F, 98, 80 are not: n = 33 + (b − 127)
 *            → 65, 58, 34 → U+0141 "Ł", U+013A "ĺ", U+0122 "Ģ" → [ð Ł ĺ Ģ</w>]   → 21 22 23 24
 * "zebra" → [z e b r a</w>]; no pair has a rank; "z" is not in the vocab → unk 41
 *                                                                              → 41 5 2 14 1
 */
Deno.test("CLIP BPE on the hand-written fixture gives the hand-derived ids", async () => {
  const tok = await loadTokenizer(fixture("clip_bpe"));
  assert.equal(tok.kind, "clip");
  assert.equal(tok.maxLength, 77);
  const head = (text: string, n: number) => Array.from(tok.encode(text).subarray(0, n));
  const ids = tok.encode("a red apple");
  assert.equal(ids.length, 77);
  assert.deepEqual(Array.from(ids.subarray(0, 6)), [40, 1, 30, 31, 6, 41]);
  assert.ok(ids.subarray(6).every((v) => v === 41), "padded with <|endoftext|>");
  assert.deepEqual(head("Hello!! 2024", 10), [40, 34, 12, 35, 19, 18, 19, 20, 41, 41]);
  assert.deepEqual(head("don't", 6), [40, 4, 11, 10, 36, 41]);
  assert.deepEqual(head("café 😀", 9), [40, 38, 7, 37, 21, 22, 23, 24, 41]);
  assert.deepEqual(head("zebra", 7), [40, 41, 5, 2, 14, 1, 41]);
  // Whitespace cleanup and lower-casing: the same ids as the clean prompt.
  assert.deepEqual(tok.encode("  A\tRED\n\n apple "), ids);
  // A special token written in the prompt maps to its id.
  assert.deepEqual(head("a <|endoftext|> a", 5), [40, 1, 41, 1, 41]);
});

Deno.test("CLIP: truncation to 77 keeps the end token; pad token is honoured", async () => {
  const tok = await loadTokenizer(fixture("clip_bpe"));
  const long = tok.encode("a ".repeat(100));
  assert.equal(long.length, 77);
  assert.equal(long[0], 40);
  assert.ok(long.subarray(1, 76).every((v) => v === 1));
  assert.equal(long[76], 41);
  // SD-2 style: pad with "!" (from special_tokens_map.json, which overrides tokenizer_config.json).
  const dir = fixture("clip_bpe");
  const files = {
    vocab: await Deno.readTextFile(`${dir}/vocab.json`),
    merges: await Deno.readTextFile(`${dir}/merges.txt`),
    tokenizerConfig: await Deno.readTextFile(`${dir}/tokenizer_config.json`),
    specialTokensMap: JSON.stringify({ pad_token: { content: "!" } }),
  };
  assert.deepEqual(Array.from(createTokenizer(files).encode("a").subarray(0, 5)), [
    40,
    1,
    41,
    17,
    17,
  ]);
  const short = createTokenizer({ ...files, tokenizerConfig: '{"model_max_length": 4}' });
  assert.equal(short.kind, "clip"); // no class given, merges.txt present
  assert.deepEqual(Array.from(short.encode("a red apple")), [40, 1, 30, 41]);
});

Deno.test("CLIP: the BPE merges every occurrence of the best pair, left to right", () => {
  const vocab = new Map([["<|startoftext|>", 0], ["<|endoftext|>", 1], ["aa", 2], ["a", 3], [
    "aa</w>",
    4,
  ], ["a</w>", 5]]);
  const tok = new ClipTokenizer(vocab, ["a a", "a a</w>"]);
  // "aaaaa" → [a a a a a</w>]; rank 0 "a a" merges pairs 0-1 and 2-3 → [aa aa a</w>]; then no rank.
  assert.deepEqual(tok.tokenize("aaaaa"), ["aa", "aa", "a</w>"]);
  // "aaa" → [a a a</w>] → "a a" at 0-1 → [aa a</w>]
  assert.deepEqual(tok.tokenize("aaa"), ["aa", "a</w>"]);
});

// ---------------------------------------------------------------- loader errors

Deno.test("loader: clear errors naming the file and field", async () => {
  await assert.rejects(loadTokenizer(fixture("no_such_dir")), {
    name: "TokenizerError",
    message: /vocab\.json: not found/,
  });
  const vocab = await Deno.readTextFile(fixture("word_tokenizer/vocab.json"));
  assert.throws(
    () => createTokenizer({ vocab, tokenizerConfig: '{"tokenizer_class": "T5Tokenizer"}' }),
    {
      name: "TokenizerError",
      message: /tokenizer_class/,
    },
  );
  assert.throws(() => createTokenizer({ vocab, tokenizerConfig: '{"model_max_length": "16"}' }), {
    name: "TokenizerError",
    message: /model_max_length/,
  });
  assert.throws(
    () => createTokenizer({ vocab, tokenizerConfig: '{"tokenizer_class": "CLIPTokenizer"}' }),
    {
      name: "TokenizerError",
      message: /merges\.txt/,
    },
  );
  assert.throws(() => parseVocab('{"a": -1}'), { name: "TokenizerError", message: /"a"/ });
  assert.throws(() => parseVocab("[1"), TokenizerError);
  assert.throws(() => new ClipTokenizer(new Map([["<|endoftext|>", 0]]), []), {
    name: "TokenizerError",
    message: /bos_token/,
  });
});
