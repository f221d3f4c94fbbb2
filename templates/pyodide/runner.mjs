// Runs a Python app inside a Pyodide distribution under Node, for cargo-wasmpack-infer.
//
//   node runner.mjs CONFIG.json
//
// CONFIG: { mode: "trace" | "measure" | "snapshot", indexURL, app (zip), entry
// ("module:function"), samples (JSON array), passes (steady passes over the samples), snapshot
// (measure: boot from this memory snapshot, checked against `snapshotIntegrity`), packages
// (names in the distribution's lock, loaded after boot), out (result JSON path; the snapshot in
// "snapshot") }.
// trace: records the modules the interpreter boots with, the modules the app imports while
// running every sample (and while formatting an error), and the static import closure of the
// app, computed with the interpreter's own `ast`.
// measure: boot, app import, first inference and steady per-sample latency, plus the outputs.
// snapshot: boots, imports the entry module (with `warm`, calls the entry on the first sample)
// and writes Pyodide's memory snapshot.
// compile: compiles every .py in `zip` with this interpreter and writes {name.pyc: base64} to out.
// strip: strips docstrings and comments from every .py in `zip` with `script` (strip_source.py)
// and writes {stripped: {name: base64}, docstringsKept: {name: why}} to out.
// A runtime split by wasm-split runs with `secondary` (the deferred module's path); with
// `loadSecondary` it is loaded right after boot, so every sample runs on it. `profileOut`: write
// the profile of an instrumented runtime (`wasm-split --instrument`) there after the samples.
// `staticReads` ({ end, out }): a runtime instrumented to call `wpi_reads.read(address, bytes)`
// before each memory read (`inspect --static-data`); which bytes below `end` were read, one byte
// each, is written to `out` after the samples.
// `checkLinkPlan`: a runtime whose linking is planned (src/python/link_plan.rs) fails to boot if
// the plan left out a table slot that Emscripten's glue looked up.
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { Buffer } from "node:buffer";
import { pathToFileURL } from "node:url";
import path from "node:path";

// {{CALL_ENTRY}}
// {{RUNTIME_HOOKS}}

const config = JSON.parse(await readFile(process.argv[2], "utf8"));
const log = (line) => process.stderr.write(line + "\n");
const isPythonError = (error) => error?.constructor?.name === "PythonError";
// What in a converted output JSON cannot hold, in Python's terms ("a set at ["tags"]"), or null.
// The outputs are compared and stored as JSON, where a set would become {} and nan null.
function notJson(value, at = "") {
  const where = at ? ` at ${at}` : "";
  if (value === null || value === undefined || ["string", "boolean"].includes(typeof value)) return null;
  if (typeof value === "number") return Number.isFinite(value) ? null : `the float ${value}${where}`;
  const entries = Array.isArray(value)
    ? value.entries()
    : isPlainObject(value)
      ? Object.entries(value)
      : null;
  if (entries) {
    for (const [key, item] of entries) {
      const unfit = notJson(item, `${at}[${JSON.stringify(key)}]`);
      if (unfit) return unfit;
    }
    return null;
  }
  const kind =
    value instanceof Set ? "a set"
    : value instanceof Uint8Array ? "bytes"
    : ArrayBuffer.isView(value) ? `a ${value.constructor.name} (a buffer such as a numpy array: return .tolist())`
    : typeof value === "bigint" ? `the int ${value}, beyond what a JSON number holds exactly`
    : `a ${value.constructor?.name ?? typeof value}`;
  return kind + where;
}
// The app failed (importing the entry, raising on a sample, or returning what JSON cannot hold):
// written for the build to report as the project's error, Python's traceback without a Node
// stack around it.
async function appFailed(stage, sample, message) {
  await writeFile(`${config.out}.app-error.json`, JSON.stringify({ stage, sample, message }));
  process.exit(1);
}
const now = () => performance.now();

const t0 = now();
// Where a boot's time goes (ms since t0): when Pyodide asked for the runtime module, got it
// compiled, and had it instantiated; the snapshot's pages put into memory; the rest of
// loadPyodide (the runtime's and Python's start-up). Timed by wrapping the calls loadPyodide
// makes, installed under the split runtime's wrapper; the snapshot's read and check, beside.
const marks = {};
// As loader.mjs boots a bundle (`compileEarly`; stock Pyodide as it ships boots without): the
// runtime's compile and the snapshot's read and check start at once, beside the import of
// Pyodide's JavaScript.
const restoreEarly = config.compileEarly
  ? compileEarly(pathToFileURL(path.join(config.indexURL, "pyodide.asm.wasm")), { readFile, Buffer })
  : null;
let snapshotFile = null;
if (config.snapshot) {
  snapshotFile = readFile(config.snapshot).then(async (bytes) => {
    if ((await sri(bytes, config.snapshotIntegrity)) !== config.snapshotIntegrity) throw new Error(`${config.snapshot}: integrity check failed`);
    marks.snapshotReadMs = now() - t0;
    return bytes;
  });
  snapshotFile.catch(() => {}); // loadPyodide awaits it
}
const bootTimer = timeBoot(marks);
const { loadPyodide } = await import(pathToFileURL(path.join(config.indexURL, "pyodide.mjs")));
const options = {
  indexURL: config.indexURL.endsWith("/") ? config.indexURL : config.indexURL + "/",
  stdout: log,
  stderr: log,
};
if (config.mode === "snapshot") options._makeSnapshot = true;
let snapshot = null;
if (snapshotFile) {
  // Pyodide awaits it before instantiating the runtime: its hooks go on last, as in loader.mjs.
  options._loadSnapshot = snapshotFile.then((bytes) => {
    snapshot = shippedSnapshot(bytes);
    return snapshot.snapshot;
  });
  options._loadSnapshot.catch(() => {}); // loadPyodide awaits it
}
if (config.checkLinkPlan) globalThis.__wasmpackInferCheckLinkPlan = true;
const staticReads = config.staticReads ? staticDataReads(config.staticReads.end) : null;
const runtime =
  config.secondary || config.profileOut
    ? splitRuntime(() => new WebAssembly.Module(readFileSync(config.secondary)))
    : null;
const pyodide = await loadPyodide(options);
marks.loadEnd = now() - t0;
snapshot?.restore();
runtime?.restore();
staticReads?.restore();
bootTimer.restore();
restoreEarly?.();
if (snapshot) {
  if (!snapshot.restored) throw new Error("loadPyodide did not copy the snapshot's body into memory");
  marks.restoreStart = snapshot.restored.started - t0;
  marks.restoreEnd = snapshot.restored.ended - t0;
}
// Installing the distribution's packages is part of booting, as it is in loader.mjs; from a
// snapshot too, since their files live in the JS-side file system.
if (config.packages?.length) {
  await pyodide.loadPackage(config.packages, { messageCallback: () => {}, errorCallback: log });
}
const bootMs = now() - t0;
const bootPhases = phasesOf(marks, bootMs);
// Not part of boot: timed apart, as secondaryMs.
if (config.loadSecondary) runtime.loadSecondary();

if (config.mode === "compile") {
  pyodide.FS.writeFile("/tmp/wpi-stdlib.zip", await readFile(config.zip));
  await writeFile(config.out, pyodide.runPython(`
import base64, importlib.util, json, sys, zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

# Named as zipimport names them, so tracebacks and __file__ agree with the source's.
root = next(p for p in sys.path if p.endswith(".zip"))
compiled = {}
with zipfile.ZipFile("/tmp/wpi-stdlib.zip") as stdlib:
    for name in stdlib.namelist():
        if not name.endswith(".py"):
            continue
        source = stdlib.read(name)
        try:
            code = compile(source, f"{root}/{name}", "exec", dont_inherit=True)
        except SyntaxError:
            continue  # zipimport would fail on it too; the source stays
        # Unchecked hash-based (PEP 552): valid whatever the zip's timestamps say.
        pyc = _code_to_hash_pyc(code, importlib.util.source_hash(source), False)
        compiled[name + "c"] = base64.b64encode(pyc).decode()
json.dumps(compiled)
`));
  process.exit(0);
}

if (config.mode === "strip") {
  pyodide.FS.writeFile("/tmp/wpi-sources.zip", await readFile(config.zip));
  const strip = pyodide.pyimport("types").ModuleType("wpi_strip_source");
  pyodide.runPython(await readFile(config.script, "utf8"), { globals: strip.__dict__ });
  await writeFile(config.out, pyodide.runPython(`
import base64, json, zipfile
with zipfile.ZipFile("/tmp/wpi-sources.zip") as sources:
    files = {name: sources.read(name) for name in sources.namelist() if name.endswith(".py")}
stripped, kept = strip_all(files)
json.dumps({"stripped": {n: base64.b64encode(b).decode() for n, b in stripped.items()},
            "docstringsKept": kept})
`, { globals: strip.__dict__ }));
  process.exit(0);
}

const bootModules = config.mode === "trace" ? pyodide.runPython("sorted(__import__('sys').modules)").toJs() : [];

if (config.mode === "trace") {
  pyodide.runPython(`
import sys
_wpi_opened = []
# Module → the module whose code imported it first (the frame above the import machinery).
_wpi_importers = {}
_WPI_IMPORT_MACHINERY = {"importlib", "importlib._bootstrap", "importlib._bootstrap_external",
                         "_frozen_importlib", "_frozen_importlib_external"}
def _wpi_importer():
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        if name not in _WPI_IMPORT_MACHINERY:
            return name
        frame = frame.f_back
    return None
def _wpi_audit(event, args):
    if event == "open" and args and isinstance(args[0], str):
        _wpi_opened.append(args[0])
    elif event == "import" and args and args[0] not in _wpi_importers:
        importer = _wpi_importer()
        if importer and importer != args[0]:
            _wpi_importers[args[0]] = importer
sys.addaudithook(_wpi_audit)
`);
}

const appBytes = await readFile(config.app);
const t1 = now();
pyodide.unpackArchive(new Uint8Array(appBytes), "zip", { extractDir: "/app" });
pyodide.runPython('import sys\nif "/app" not in sys.path: sys.path.insert(0, "/app")');
const [moduleName, functionName] = config.entry.split(":");
if (config.mode === "snapshot") {
  // Imported without a JS proxy alive, which a snapshot cannot hold. The app's files live in the
  // JS-side file system, also not in a snapshot: whoever boots from it unpacks app.zip again; the
  // imported modules come back with the memory.
  pyodide.runPython(`import importlib; importlib.import_module(${JSON.stringify(moduleName)})`);
  if (config.warm) {
    // The first sample, through JSON as loader.mjs's toPy would give it (a JSON string is a
    // Python string literal), and the result dropped, so no proxy is left alive.
    const [sample] = JSON.parse(await readFile(config.samples, "utf8"));
    try {
      pyodide.runPython(`
import importlib, json
getattr(importlib.import_module(${JSON.stringify(moduleName)}), ${JSON.stringify(functionName)})(json.loads(${JSON.stringify(JSON.stringify(sample))}))
`);
    } catch (e) {
      throw new Error(`warming the snapshot: ${config.entry} failed on the first sample: ${e.message}`);
    }
  }
  // Pyodide refuses to snapshot a non-empty registry of loaded packages. Their files are not in
  // the snapshot either, so whoever boots from it loads them again, into an empty registry.
  for (const name of Object.keys(pyodide.loadedPackages)) delete pyodide.loadedPackages[name];
  pyodide.runPython("import gc; gc.collect()");
  const zeroed = zeroFreeHeap(pyodide._module);
  await writeFile(config.out, pyodide.makeMemorySnapshot());
  await writeFile(`${config.out}.json`, JSON.stringify(zeroed));
  process.exit(0);
}
// importlib, as loader.mjs does: pyimport walks attributes, which a package can rebind.
let entry;
try {
  entry = pyodide.pyimport("importlib").import_module(moduleName)[functionName];
} catch (error) {
  if (!isPythonError(error)) throw error;
  await appFailed("import", null, error.message);
}
if (entry === undefined) {
  await appFailed("import", null, `AttributeError: module '${moduleName}' has no attribute '${functionName}'`);
}
const importMs = now() - t1;

const samples = JSON.parse(await readFile(config.samples, "utf8"));
const call = (sample) => callEntry(pyodide, entry, sample);

const outputs = [];
let firstInferenceMs = 0;
for (const [index, sample] of samples.entries()) {
  const started = now();
  try {
    outputs.push(call(sample));
  } catch (error) {
    if (!isPythonError(error)) throw error;
    await appFailed("sample", index, error.message);
  }
  if (index === 0) firstInferenceMs = now() - started;
  const unfit = notJson(outputs[index]);
  if (unfit) await appFailed("output", index, unfit);
}

const steadyUs = [];
for (let pass = 0; pass < (config.passes ?? 1); pass++) {
  for (const sample of samples) {
    const start = now();
    call(sample);
    steadyUs.push((now() - start) * 1000);
  }
}

// One more pass, each call timed in parts: converting the sample to Python, the entry, converting
// the result back (medians, µs). Apart from the steady pass: reading the clock adds to a call.
// Tracing, each output is also checked against the first call's: the shaken bundle is validated
// by returning exactly what stock Pyodide returned, which an app that draws unseeded random
// numbers (or reads the clock) cannot.
const parts = [];
for (const [index, sample] of samples.entries()) {
  const again = callEntry(pyodide, entry, sample, parts);
  if (config.mode !== "trace") continue;
  const [first, second] = [outputs[index], again].map((output) => JSON.stringify(output));
  if (first !== second) {
    const clip = (text) => (text.length > 120 ? `${text.slice(0, 120)}…` : text);
    await appFailed("nondeterministic", index, `first ${clip(first)}, then ${clip(second)}`);
  }
}
const medianUs = (index) => {
  const sorted = parts.map((p) => p[index]).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] * 1000 : 0;
};
const boundaryUs = [medianUs(0), medianUs(1), medianUs(2)];

const result = { bootMs, importMs, firstInferenceMs, steadyUs, boundaryUs, outputs, secondaryMs: runtime?.secondaryMs ?? null, bootPhases };
if (config.profileOut) {
  const size = 1 << 20;
  const address = pyodide._module._malloc(size);
  const written = runtime.instance.exports.__write_profile(address, size);
  await writeFile(config.profileOut, pyodide._module.HEAPU8.slice(address, address + written));
  pyodide._module._free(address);
}
if (staticReads) await writeFile(config.staticReads.out, staticReads.read);
if (config.mode === "trace") {
  // The error path formats a traceback: whatever it imports must ship too.
  try {
    pyodide.runPython("raise ValueError('cargo-wasmpack-infer probe')");
  } catch {}
  // What the run imported, read before the static walk (find_spec imports parent packages).
  const loaded = JSON.parse(pyodide.runPython(`
import json, sys
json.dumps({name: getattr(getattr(module, "__spec__", None), "origin", None)
            for name, module in list(sys.modules.items())})
`));
  const traced = pyodide.runPython(`
import ast, importlib.util, json, sys

class _WpiImports(ast.NodeVisitor):
    """Imports in a module: all of them (deep), or only those that run when it is imported."""

    def __init__(self, package, deep):
        self.package, self.deep, self.names = package, deep, []

    def visit_FunctionDef(self, node):
        if self.deep:
            self.generic_visit(node)

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_Import(self, node):
        self.names.extend(alias.name for alias in node.names)

    def visit_ImportFrom(self, node):
        try:
            base = (importlib.util.resolve_name("." * node.level + (node.module or ""), self.package)
                    if node.level else node.module)
        except ImportError:
            return
        if base:
            self.names.append(base)
            self.names.extend(base + "." + alias.name for alias in node.names)

    def visit_Call(self, node):
        func = node.func
        named = ((isinstance(func, ast.Attribute) and func.attr == "import_module")
                 or (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")))
        if named and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            self.names.append(node.args[0].value)
        self.generic_visit(node)

_wpi_static_importers = {}

def _wpi_static_closure(root, app_dir):
    seen, found, queue = set(), {}, [root]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            queue.append(parent)
        try:
            spec = importlib.util.find_spec(name)
        except Exception:
            spec = None
        if spec is None:
            continue
        found[name] = spec.origin
        try:
            source = spec.loader.get_source(name) if spec.loader else None
        except Exception:
            source = None
        if not source:
            continue
        is_package = spec.submodule_search_locations is not None
        # The app's code is read whole (lazy and conditional imports included); anything else
        # only for what importing it runs: the trace already saw what the samples called.
        deep = (spec.origin or "").startswith(app_dir)
        visitor = _WpiImports(name if is_package else parent, deep)
        try:
            visitor.visit(ast.parse(source))
        except SyntaxError:
            continue
        for imported in visitor.names:
            if imported != name:
                _wpi_static_importers.setdefault(imported, name)
        queue.extend(visitor.names)
    return found

_wpi_found = _wpi_static_closure(${JSON.stringify(moduleName)}, "/app/")
json.dumps({"static": _wpi_found, "opened": sorted(set(_wpi_opened)), "path": sys.path,
            "importers": {**_wpi_static_importers, **_wpi_importers}})
`);
  Object.assign(result, { bootModules, loaded }, JSON.parse(traced));
}
await writeFile(config.out, JSON.stringify(result));

// Zeroes the free chunks of Emscripten's malloc (dlmalloc), through its own API only: with the
// heap's footprint capped where it is, take every free chunk malloc will hand out, largest first,
// zero it and give it back. Free chunks hold what freed objects left (a third of the heap after
// boot), which compresses as badly as live data; zeros cost a snapshot almost nothing.
function zeroFreeHeap(module) {
  const limit = module._malloc_footprint_limit();
  module._malloc_set_footprint_limit(module._malloc_footprint());
  const taken = [];
  let bytes = 0;
  try {
    for (let size = 1 << 30; size >= 16; size >>>= 1) {
      for (let chunk = module._malloc(size); chunk; chunk = module._malloc(size)) {
        const usable = module._malloc_usable_size(chunk);
        module.HEAPU8.fill(0, chunk, chunk + usable);
        bytes += usable;
        taken.push(chunk);
      }
    }
  } finally {
    for (const chunk of taken) module._free(chunk);
    module._malloc_set_footprint_limit(limit);
  }
  return { bytes, chunks: taken.length };
}

// Gives a runtime that imports `wpi_reads.read` the hook, which marks in `read` each byte below
// `end` a load or memory.copy read. Installed around loadPyodide(); the hook stays bound after.
function staticDataReads(end) {
  const read = new Uint8Array(end);
  const hook = (address, bytes) => {
    const from = address >>> 0;
    if (from >= end) return;
    const to = Math.min(from + (bytes >>> 0), end);
    for (let at = from; at < to; at++) read[at] = 1;
  };
  const restore = wrapInstantiate({
    imports: (module, given) =>
      WebAssembly.Module.imports(module).some((i) => i.module === "wpi_reads")
        ? { ...given, wpi_reads: { read: hook } }
        : given,
  });
  return { read, restore };
}

// Wraps WebAssembly.compile / instantiate until `restore()`, writing into `marks` when the
// runtime module (the one module of over 1 MB) was asked for, was compiled (or handed over,
// compiled early) and was instantiated. (The snapshot's restore is timed by shippedSnapshot,
// which puts its pages in.)
function timeBoot(marks) {
  const { compile, instantiate } = WebAssembly;
  const runtimes = new WeakSet();
  const big = (bytes) => (bytes?.byteLength ?? 0) > 1 << 20;
  WebAssembly.compile = async (bytes, ...rest) => {
    const started = now() - t0;
    const module = await compile(bytes, ...rest);
    if (big(bytes)) {
      Object.assign(marks, { compileStart: started, compileEnd: now() - t0 });
      runtimes.add(module);
    }
    return module;
  };
  WebAssembly.instantiate = async (source, ...rest) => {
    if (source instanceof WebAssembly.Module) {
      const instance = await instantiate(source, ...rest);
      if (runtimes.has(source)) marks.instantiateEnd = now() - t0;
      return instance;
    }
    // From bytes: compiled, then instantiated, through the wrappers, so both are timed.
    const module = await WebAssembly.compile(source);
    return { module, instance: await WebAssembly.instantiate(module, ...rest) };
  };
  return {
    restore() {
      Object.assign(WebAssembly, { compile, instantiate });
    },
  };
}

// The boot in phases that add up to `bootMs`, or null when a wrapped call did not run (a
// runtime instantiated some other way): each phase is the time between two marks. The
// snapshot's read and check starts with the boot and runs beside the fetch: not one of them.
function phasesOf(marks, bootMs) {
  const { snapshotReadMs = 0, compileStart, compileEnd, instantiateEnd, loadEnd } = marks;
  if ([compileStart, compileEnd, instantiateEnd, loadEnd].includes(undefined)) return null;
  const restoreMs = marks.restoreEnd === undefined ? 0 : marks.restoreEnd - marks.restoreStart;
  // The manifest's names (`BootPhases`), so the build reads them as they are.
  return {
    snapshot_read_ms: snapshotReadMs,
    fetch_ms: compileStart,
    compile_ms: compileEnd - compileStart,
    instantiate_ms: instantiateEnd - compileEnd,
    restore_ms: restoreMs,
    startup_ms: loadEnd - instantiateEnd - restoreMs,
    packages_ms: bootMs - loadEnd,
  };
}
