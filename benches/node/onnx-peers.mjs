// Times one ONNX model several ways in this Node process, one after the other: ONNX Runtime Web's
// wasm execution provider (one thread) and cargo-wasmpack-infer bundles through their loader.mjs.
//
//   node onnx-peers.mjs CONFIG.json
//
// CONFIG: { ort: the onnxruntime-web package directory, model: the .onnx file, input: the ONNX
// input's name, output: the output to read, bundles: { NAME: the bundle's loader.mjs }, samples:
// raw f32 little-endian samples, sampleLen: f32 per sample, batches: [1, 16, 256], runs: steady
// runs per batch, warmup: calls before timing }. Prints { ort: {...}, bundles: { NAME: {...} } }
// with loadMs, firstMs and steady median µs per batch, and each bundle's maxAbsDiff from ORT.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const config = JSON.parse(await readFile(process.argv[2], "utf8"));
const now = () => performance.now();
const raw = await readFile(config.samples);
const samples = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const count = samples.length / config.sampleLen;
const batchOf = (n) => {
  const out = new Float32Array(n * config.sampleLen);
  for (let i = 0; i < n; i++) {
    const s = i % count;
    out.set(samples.subarray(s * config.sampleLen, (s + 1) * config.sampleLen), i * config.sampleLen);
  }
  return out;
};
const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function timeVariant(load, infer) {
  const t0 = now();
  const handle = await load();
  const loadMs = now() - t0;
  const first = batchOf(1);
  const t1 = now();
  await infer(handle, first, 1);
  const firstMs = now() - t1;
  const steadyUs = {};
  for (const batch of config.batches) {
    const input = batchOf(batch);
    // Warm-up: V8 tiers hot functions up from Liftoff to TurboFan after some calls.
    for (let i = 0; i < config.warmup; i++) await infer(handle, input, batch);
    const times = [];
    for (let i = 0; i < config.runs; i++) {
      const t = now();
      await infer(handle, input, batch);
      times.push((now() - t) * 1000);
    }
    steadyUs[batch] = median(times);
  }
  return { loadMs, firstMs, steadyUs };
}

const require = createRequire(pathToFileURL(config.ort + "/"));
const ort = require(config.ort);
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
const modelBytes = await readFile(config.model);
const ortResult = await timeVariant(
  () => ort.InferenceSession.create(modelBytes, { executionProviders: ["wasm"] }),
  async (session, input, batch) => {
    const tensor = new ort.Tensor("float32", input, [batch, config.sampleLen]);
    const result = await session.run({ [config.input]: tensor }, [config.output]);
    return result[config.output].data;
  },
);

// Both must agree on the samples before their times mean anything.
const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ["wasm"] });
const all = batchOf(count);
const theirs = (await session.run({ [config.input]: new ort.Tensor("float32", all, [count, config.sampleLen]) }, [config.output]))[config.output].data;

const bundles = {};
for (const [name, loader] of Object.entries(config.bundles)) {
  const { load } = await import(pathToFileURL(loader));
  const result = await timeVariant(
    () => load(),
    async (model, input) => model.infer(input),
  );
  const ours = await (await load()).infer(all);
  let maxAbsDiff = 0;
  for (let i = 0; i < theirs.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(theirs[i] - ours[i]));
  bundles[name] = { ...result, maxAbsDiff };
}

console.log(JSON.stringify({ ort: ortResult, bundles, samples: count }));
