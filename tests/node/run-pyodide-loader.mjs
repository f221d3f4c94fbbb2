// Loads a Python bundle's loader.mjs in Node and runs inputs through it:
//   node run-pyodide-loader.mjs BUNDLE/pyodide INPUTS.json [normal|snapshot|scratch [PROBE]]
// (normal: load() as the bundle boots by default; scratch: without the snapshot)
// prints {"outputs": [...], "deferredLoadMs": ms | null, "probe": ...} on stdout, `probe` the
// value of the Python expression PROBE right after load(), before the first call; exit 1 with the
// error's name on stderr when loading fails.
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [dir, inputsPath, boot, probe] = process.argv.slice(2);
const { load } = await import(pathToFileURL(path.resolve(dir, "loader.mjs")).href);
try {
  const model = await load(boot === "normal" || !boot ? {} : { snapshot: boot === "snapshot" });
  const probed = probe ? model.pyodide.runPython(probe) : null;
  const inputs = JSON.parse(await readFile(inputsPath, "utf8"));
  const outputs = inputs.map((input) => model.infer(input));
  process.stdout.write(JSON.stringify({ outputs, deferredLoadMs: model.deferredLoadMs, probe: probed }));
} catch (error) {
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exit(1);
}
