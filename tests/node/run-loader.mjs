// Runs a bundle through its loader.mjs in Node, as an application would:
//   node run-loader.mjs BUNDLE_DIR SAMPLES.bin [LEVEL]
//     → {"labels": [argmax of each sample's output], "variant": "simd128", "best": "simd128"}
// LEVEL forces a variant (`load({ variant })`); without it the loader picks the best this Node
// runs. Errors print as "<name>: <message>" with exit code 1.
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

const [bundle, samplesPath, level] = process.argv.slice(2);
try {
  const { load, bestVariant } = await import(pathToFileURL(`${bundle}/loader.mjs`).href);
  const model = await load(level ? { variant: level } : {});
  const input = new Float32Array(new Uint8Array(await readFile(samplesPath)).buffer);
  const output = await model.infer(input);
  const classes = model.outputShape.reduce((a, b) => a * b, 1);
  const labels = [];
  for (let i = 0; i < output.length; i += classes) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (output[i + j] > output[i + best]) best = j;
    labels.push(best);
  }
  console.log(JSON.stringify({ labels, variant: model.variant, best: bestVariant().level }));
} catch (error) {
  console.error(`${error.name}: ${error.message}`);
  process.exit(1);
}
