// Times a kernel bundle through its own loader.mjs, as a server-side JavaScript host runs it
// (`measure --node`): load, first inference, steady latency per batch, and each call's copies in
// and out of linear memory apart from `wpi_infer`. Writes raw timings (µs) and every sample's
// outputs as JSON to OUT; the tool computes the statistics. The Python host's twin is measure.py.
//
//   node measure.mjs BUNDLE SPEC.json OUT.json

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [bundle, specPath, outPath] = process.argv.slice(2);
const spec = JSON.parse(await readFile(specPath, "utf8"));
const { load, manifest } = await import(pathToFileURL(join(bundle, "loader.mjs")).href);

const TYPED = { f32: Float32Array, f64: Float64Array, i8: Int8Array, u8: Uint8Array, i16: Int16Array, u16: Uint16Array, i32: Int32Array, u32: Uint32Array };
const Input = TYPED[manifest.input.dtype];
const clock = () => process.hrtime.bigint();
const us = (nanoseconds) => Number(nanoseconds) / 1000;

const samples = new Uint8Array(await readFile(spec.samples));
const sampleBytes = samples.byteLength / spec.count;

// `size` samples, the bundle's repeated as needed, as a typed array of the input dtype.
function batchOf(size) {
  const bytes = new Uint8Array(size * sampleBytes);
  for (let i = 0; i < size; i++) {
    const from = (i % spec.count) * sampleBytes;
    bytes.set(samples.subarray(from, from + sampleBytes), i * sampleBytes);
  }
  return new Input(bytes.buffer);
}

const loads = [];
const firsts = [];
let model;
for (let i = 0; i < spec.loads; i++) {
  const started = clock();
  model = await load();
  const loaded = clock();
  await model.infer(batchOf(1));
  firsts.push(us(clock() - loaded));
  loads.push(us(loaded - started));
}

const steady = [];
for (const size of spec.batches) {
  const batch = batchOf(size);
  for (let i = 0; i < spec.warmup_runs; i++) await model.infer(batch);
  const calls = [];
  const budgetEnd = clock() + BigInt(Math.round(spec.steady_budget_s * 1e9));
  while (calls.length < spec.max_runs && (calls.length < spec.min_runs || clock() < budgetEnd)) {
    const started = clock();
    await model.infer(batch);
    calls.push(us(clock() - started));
  }
  const parts = { upload_us: [], compute_us: [], download_us: [] };
  for (let i = 0; i < Math.min(50, Math.max(3, Math.floor(calls.length / 4))); i++) {
    const t0 = clock();
    const outBytes = model._copyIn(batch);
    const t1 = clock();
    model._compute(batch.byteLength, outBytes);
    const t2 = clock();
    model._copyOut(outBytes);
    const t3 = clock();
    parts.upload_us.push(us(t1 - t0));
    parts.compute_us.push(us(t2 - t1));
    parts.download_us.push(us(t3 - t2));
  }
  steady.push({ batch: size, call_us: calls, ...parts });
}

const outputs = await model.infer(new Input(samples.buffer.slice(0)));
await writeFile(
  outPath,
  JSON.stringify({
    runtime: `Node ${process.versions.node}, V8 ${process.versions.v8.split("-")[0]}`,
    variant: model.variant,
    load_us: loads,
    first_inference_us: firsts,
    steady,
    outputs: Buffer.from(outputs.buffer, outputs.byteOffset, outputs.byteLength).toString("base64"),
  }),
);
