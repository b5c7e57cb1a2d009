/**
 * ONNX external data: tensors whose bytes live in a side file (`location`, `offset`, `length`
 * entries). Reading is lazy and by offset (open, seek, read just that range), so a model whose
 * weights file is several gigabytes is never held in memory at once; the splitter loads only the
 * tensors of the segment it is writing.
 *
 * @module
 */

import type { TensorProto } from "./model.ts";
import { elementCount, elemSize, isExternal } from "./tensor.ts";

/** Where an external tensor's bytes are. */
export interface ExternalLocation {
  /** Path relative to the model file's folder. */
  location: string;
  offset: number;
  /** Byte length; when absent, the tensor's size from its dims and type. */
  length: number;
}

/** Parses a tensor's `external_data` entries; throws naming the tensor when they are bad. */
export function externalLocation(t: TensorProto): ExternalLocation {
  const get = (k: string) => t.externalData?.find((e) => e.key === k)?.value;
  const location = get("location");
  if (!location) throw new Error(`tensor ${t.name}: external data without a location`);
  if (location.startsWith("/") || location.split(/[\\/]/).includes("..")) {
    throw new Error(`tensor ${t.name}: external data location ${location} leaves the model folder`);
  }
  const offset = Number(get("offset") ?? "0");
  const expected = elementCount(t.dims) * elemSize(t.dataType);
  const length = get("length") !== undefined ? Number(get("length")) : expected;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new Error(`tensor ${t.name}: bad external data offset/length`);
  }
  if (expected > 0 && length !== expected) {
    throw new Error(
      `tensor ${t.name}: external data length ${length} does not match its shape (${expected} bytes)`,
    );
  }
  return { location, offset, length };
}

/** Reads external tensor bytes from the files beside a model, by offset, one tensor at a time. */
export class ExternalDataReader {
  private files = new Map<string, { file: Deno.FsFile; size: number }>();

  /** `baseDir`: the folder of the model file the `location`s are relative to. */
  constructor(readonly baseDir: string) {}

  private pending: Promise<unknown> = Promise.resolve();

  /** Reads one tensor's bytes (a fresh buffer). Concurrent calls are queued (seek + read). */
  read(t: TensorProto): Promise<Uint8Array> {
    const run = this.pending.then(() => this.readNow(t));
    this.pending = run.catch(() => {});
    return run;
  }

  private async readNow(t: TensorProto): Promise<Uint8Array> {
    const loc = externalLocation(t);
    const entry = await this.open(loc.location);
    if (loc.offset + loc.length > entry.size) {
      throw new Error(
        `tensor ${t.name}: external data ${loc.location} is ${entry.size} bytes, ` +
          `needs ${loc.offset + loc.length}`,
      );
    }
    const out = new Uint8Array(loc.length);
    await entry.file.seek(loc.offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < loc.length) {
      const n = await entry.file.read(out.subarray(got));
      if (n === null) throw new Error(`tensor ${t.name}: unexpected end of ${loc.location}`);
      got += n;
    }
    return out;
  }

  /** A copy of the tensor with its bytes inline (`raw_data`); inline tensors are returned as is. */
  async inline(t: TensorProto): Promise<TensorProto> {
    if (!isExternal(t)) return t;
    const rawData = await this.read(t);
    const { externalData: _e, dataLocation: _d, ...rest } = t;
    return { ...rest, rawData };
  }

  /** Closes the open files. */
  close(): void {
    for (const { file } of this.files.values()) file.close();
    this.files.clear();
  }

  private async open(location: string) {
    let entry = this.files.get(location);
    if (!entry) {
      const path = `${this.baseDir}/${location}`;
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { read: true });
      } catch (e) {
        throw new Error(
          `external data file ${path} cannot be opened (${(e as Error).message}); ` +
            "keep it beside the model file",
        );
      }
      entry = { file, size: (await file.stat()).size };
      this.files.set(location, entry);
    }
    return entry;
  }
}
