/**
 * The UNet input contract: the three timestep declarations real exports use (float32 [batch] from
 * diffusers' converter, int64 [steps] from optimum <= 1.23, float32 [] from optimum 1.24-1.27),
 * fixed [1], float16; the tensor built for each; and clear errors for what cannot be fed. The
 * real exports of each form run end to end in sd_folder_test.ts.
 */
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  timestepContract,
  timestepTensor,
  UNetContractError,
  unetInputContract,
  unetInputShapes,
} from "../lib/model/unet_inputs.ts";
import type { TensorSpec } from "../lib/unet/split_manifest.ts";

const t = (dtype: string, shape: (number | string)[]): TensorSpec => ({
  name: "timestep",
  dtype: dtype as TensorSpec["dtype"],
  shape,
});
const SAMPLE: TensorSpec = {
  name: "sample",
  dtype: "float32",
  shape: ["batch", "channels", "height", "width"],
};
const HIDDEN: TensorSpec = {
  name: "encoder_hidden_states",
  dtype: "float32",
  shape: ["batch", "sequence", 768],
};
const OUT: TensorSpec = { name: "out_sample", dtype: "float32", shape: ["batch", 4, "h", "w"] };

Deno.test("timestep contracts: the three export forms, fixed [1] and float16", () => {
  assertEquals(timestepContract(t("float32", ["batch"])), { dtype: "float32", form: "per-sample" });
  assertEquals(timestepContract(t("int64", ["steps"])), { dtype: "int64", form: "per-sample" });
  assertEquals(timestepContract(t("float32", [])), { dtype: "float32", form: "scalar" });
  assertEquals(timestepContract(t("int64", [1])), { dtype: "int64", form: "fixed", length: 1 });
  assertEquals(timestepContract(t("float16", ["batch"])).dtype, "float16");
});

Deno.test("timestep tensors: rank, length and dtype as declared", () => {
  const scalar = timestepTensor({ dtype: "float32", form: "scalar" }, 981, 2);
  assertEquals([scalar.type, scalar.dims], ["float32", []]);
  assertEquals(Array.from(scalar.data as Float32Array), [981]);
  const perSample = timestepTensor({ dtype: "int64", form: "per-sample" }, 946.4, 4);
  assertEquals([perSample.type, perSample.dims], ["int64", [4]]);
  assertEquals(Array.from(perSample.data as BigInt64Array), [946n, 946n, 946n, 946n]);
  const fixed = timestepTensor({ dtype: "int64", form: "fixed", length: 1 }, 500, 2);
  assertEquals(fixed.dims, [1]);
  const half = timestepTensor({ dtype: "float16", form: "per-sample" }, 999, 2);
  assertEquals([half.type, half.dims], ["float16", [2]]);
  // 999 is exact in float16
  const bits = half.data as Uint16Array;
  assertEquals(new Float16Array(bits.buffer, bits.byteOffset, 2)[1], 999);
});

Deno.test("timestep: what cannot be fed is refused with the reason", () => {
  assertThrows(() => timestepContract(t("bool", ["batch"])), "supported: float32, float16");
  assertThrows(() => timestepContract(t("float32", [2, 1])), "supported shapes are []");
  assertThrows(
    () => timestepContract({ ...t("float32", []), rankUnknown: true }),
    "no declared shape",
  );
  assertThrows(
    () => timestepTensor({ dtype: "int64", form: "fixed", length: 2 }, 500, 1),
    "fixed length 2",
  );
});

Deno.test("the input contract: fixed and symbolic latent sizes, and refusals naming the input", () => {
  const dyn = unetInputContract([SAMPLE, t("float32", []), HIDDEN], [OUT]);
  assertEquals([dyn.latentHeight, dyn.latentWidth, dyn.crossAttentionDim], [null, null, 768]);
  assertEquals(dyn.timestep.form, "scalar");
  const fixed = unetInputContract(
    [{ ...SAMPLE, shape: ["batch", 4, 16, 16] }, t("int64", [1]), HIDDEN],
    [OUT],
  );
  assertEquals([fixed.latentChannels, fixed.latentHeight, fixed.latentWidth], [4, 16, 16]);

  const err = (inputs: TensorSpec[], includes: string) => {
    const e = assertThrows(() => unetInputContract(inputs, [OUT]), includes);
    assert(e instanceof UNetContractError);
  };
  err([SAMPLE, HIDDEN], "no input timestep");
  err([{ ...SAMPLE, dtype: "float16" }, t("float16", ["batch"]), HIDDEN], "--quantize fp16");
  err([SAMPLE, t("int64", ["batch"]), HIDDEN, { ...HIDDEN, name: "text_embeds" }], "text_embeds");
  err([SAMPLE, t("float32", ["a", "b"]), HIDDEN], "timestep is declared float32 [a, b]");
});

Deno.test("input shapes: symbols filled from the plan, fixed dims kept", () => {
  const shapes = unetInputShapes([SAMPLE, t("int64", ["steps"]), HIDDEN], {
    batch: 2,
    latentHeight: 64,
    latentWidth: 96,
    channels: 4,
    sequence: 77,
  });
  assertEquals(shapes.get("sample"), [2, 4, 64, 96]);
  assertEquals(shapes.get("timestep"), [2]);
  assertEquals(shapes.get("encoder_hidden_states"), [2, 77, 768]);
  const scalar = unetInputShapes([t("float32", [])], {
    batch: 2,
    latentHeight: 8,
    latentWidth: 8,
    channels: 4,
    sequence: 77,
  });
  assertEquals(scalar.get("timestep"), []);
});
