import { assert, assertEquals, assertThrows } from "./_assert.ts";
import {
  float32Tensor,
  int64Tensor,
  numericTensor,
  toFloat32,
  zeros,
} from "../lib/runtime/tensors.ts";
import { ort } from "../lib/runtime/ort.ts";

Deno.test("numeric tensors take the dtype the model input wants", () => {
  const i64 = numericTensor([500], [1], "int64");
  assertEquals(i64.type, "int64");
  assertEquals([...(i64.data as BigInt64Array)], [500n]);
  assertEquals(numericTensor([1.6], [1], "int32").data, Int32Array.of(2));
  assertEquals(numericTensor([999.5], [1], "float32").data, Float32Array.of(999.5));
  const f16 = numericTensor([0.5, 1000], [2], "float16");
  assertEquals(f16.type, "float16");
  assertThrows(() => numericTensor([1], [1], "string"), "cannot build a string tensor");
  assertEquals([...(int64Tensor([1, 2.4], [2]).data as BigInt64Array)], [1n, 2n]);
});

Deno.test("toFloat32 reads float32 without a copy and converts float16", async () => {
  const data = Float32Array.of(1, -2, 3.5);
  assert((await toFloat32(float32Tensor(data, [3]))) === data);
  const half = numericTensor([0.5, -1.25, 1000], [3], "float16");
  assertEquals([...(await toFloat32(half))], [0.5, -1.25, 1000]);
  let message = "";
  try {
    await toFloat32(new ort.Tensor("int64", BigInt64Array.of(1n), [1]));
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(message, "tensor of type int64 is not a float tensor");
});

Deno.test("zeros have the shape asked for", async () => {
  const z = zeros("float32", [2, 3]);
  assertEquals(z.dims, [2, 3]);
  assertEquals([...(await toFloat32(z))], [0, 0, 0, 0, 0, 0]);
  assertEquals([...(await toFloat32(zeros("float16", [2])))], [0, 0]);
  assertEquals([...zeros("int64", [2]).data as BigInt64Array], [0n, 0n]);
  assertEquals([...zeros("int32", [1]).data as Int32Array], [0]);
});
