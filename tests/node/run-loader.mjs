// Runs a bundle through its loader.mjs in Node, as an application would:
//   node run-loader.mjs BUNDLE_DIR SAMPLES.bin   → {"labels": [argmax of each sample's output]}
// Errors print as "<name>: <message>" with exit code 1.
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

const [bundle, samplesPath] = process.argv.slice(2);
try {
  const { load } = await import(pathToFileURL(`${bundle}/loader.mjs`).href);
  const model = await load();
  const input = new Float32Array(new Uint8Array(await readFile(samplesPath)).buffer);
  const output = await model.infer(input);
  const classes = model.outputShape.reduce((a, b) => a * b, 1);
  const labels = [];
  for (let i = 0; i < output.length; i += classes) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (output[i + j] > output[i + best]) best = j;
    labels.push(best);
  }
  console.log(JSON.stringify({ labels }));
} catch (error) {
  console.error(`${error.name}: ${error.message}`);
  process.exit(1);
}
