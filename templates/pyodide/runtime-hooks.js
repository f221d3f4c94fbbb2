// Hooks around the Pyodide runtime's instantiation (cargo-wasmpack-infer), inlined into loader.mjs
// and the build's Node runner, so the build verifies the code that ships. Each is installed around
// loadPyodide() only; `restore()` puts WebAssembly's functions back (last installed, first restored).

// Wraps WebAssembly.instantiate(Streaming): `imports(module, given)` gives the imports a module is
// instantiated with, and `instantiated(module, instance)` sees each instance before its caller
// does. Returns the function that restores them.
function wrapInstantiate({ imports = (module, given) => given, instantiated = () => {} }) {
  const { instantiate, instantiateStreaming } = WebAssembly;
  const start = async (module, given) => {
    const instance = await instantiate(module, imports(module, given));
    instantiated(module, instance);
    return { module, instance };
  };
  WebAssembly.instantiate = async (source, given) =>
    source instanceof WebAssembly.Module
      ? (await start(source, given)).instance
      : start(await WebAssembly.compile(source), given);
  WebAssembly.instantiateStreaming = async (source, given) =>
    start(await WebAssembly.compileStreaming(source), given);
  return () => Object.assign(WebAssembly, { instantiate, instantiateStreaming });
}

// Compiles the runtime module at `url` from the moment a boot starts, beside the import of
// Pyodide's JavaScript (1.2 MB of glue, parsed and run before Pyodide asks for the module), and
// hands that module to Pyodide's own instantiation of the same file. `node`: { readFile, Buffer }
// where the file is read from disk (Pyodide reads it again; the two are compared), else null:
// fetched, and Pyodide's own fetch of `url` gets an empty stand-in, so the module downloads once.
// Install it before the other hooks. Returns a function that puts everything back.
function compileEarly(url, node) {
  const { compile, compileStreaming } = WebAssembly;
  const { fetch } = globalThis;
  const read = node ? node.readFile(url) : null;
  const early = read ? read.then((bytes) => compile(bytes)) : compileStreaming(fetch(url));
  early.catch(() => {}); // Pyodide's instantiation of it reports the failure
  const standIn = read ? null : new Response(new Uint8Array(0));
  const isOurs = async (source) => {
    if (!read || !ArrayBuffer.isView(source)) return false;
    const ours = await read.catch(() => null);
    return !!ours && node.Buffer.from(source.buffer, source.byteOffset, source.byteLength).equals(ours);
  };
  WebAssembly.compile = async (source, ...rest) => ((await isOurs(source)) ? early : compile(source, ...rest));
  WebAssembly.compileStreaming = async (source, ...rest) => {
    const response = await source;
    return response === standIn ? early : compileStreaming(response, ...rest);
  };
  if (standIn) {
    globalThis.fetch = (input, init) => {
      const href = new URL(input instanceof Request ? input.url : input, globalThis.location).href;
      return href === url.href ? Promise.resolve(standIn) : fetch(input, init);
    };
  }
  // Instantiation from bytes or a response then goes through compile(Streaming) above.
  const restoreInstantiate = wrapInstantiate({});
  return () => {
    restoreInstantiate();
    Object.assign(WebAssembly, { compile, compileStreaming });
    if (standIn) globalThis.fetch = fetch;
  };
}

// Runs a Pyodide runtime split by binaryen's wasm-split. Each table slot whose function moved to
// the secondary module holds a placeholder function of the primary (src/python/placeholder_thunks.rs)
// that calls the primary's one import `placeholder.load`, then its own slot: the first call loads
// the secondary, whose element segments put the real functions into the table, and the call goes
// on through the table. The load is synchronous because the call comes from inside wasm.
// `readSecondary()` returns the secondary's compiled WebAssembly.Module.
function splitRuntime(readSecondary) {
  const state = { instance: null, secondaryMs: null };
  const placeholders = { load: () => state.loadSecondary() };
  state.loadSecondary = () => {
    if (state.secondaryMs !== null) return;
    const started = performance.now();
    new WebAssembly.Instance(readSecondary(), { primary: state.instance.exports });
    state.secondaryMs = performance.now() - started;
  };
  const primaries = new WeakSet();
  state.restore = wrapInstantiate({
    imports(module, given) {
      if (!WebAssembly.Module.imports(module).some((i) => i.module === "placeholder")) return given;
      primaries.add(module);
      return { ...given, placeholder: placeholders };
    },
    instantiated(module, instance) {
      // The runtime is the split primary, or a runtime instrumented to write a profile; Pyodide's
      // small helper modules, and anything else instantiated meanwhile, pass through untouched.
      if (primaries.has(module) || WebAssembly.Module.exports(module).some((e) => e.name === "__write_profile")) {
        state.instance = instance;
      }
    },
  });
  return state;
}

// Pyodide's memory snapshot as a bundle ships it (src/python/snapshot.rs): the bytes of the
// runtime's static data (what its data segments write into memory at instantiation) are stored
// XORed with what those segments write, so static data the interpreter never changed is zeros,
// and only the 4 KiB pages of memory that are not all zeros are in the file, after a bitmap of
// which are. The header's magic is changed ("\0wpi"), so Pyodide itself refuses the file as it
// ships; a 20-byte trailer gives the XORed range, the checksum of the memory it was XORed with,
// and the memory's length.
//
// Returns `snapshot`, to give loadPyodide (`_loadSnapshot`): the header alone, which Pyodide reads
// and then copies its (empty) body into memory. That copy is where the pages go in, straight from
// the file: the static data, decoded the moment the runtime is instantiated, the stored pages,
// and zeros where a page not stored is not already zero; the same memory Pyodide's own copy of
// the whole 30 MiB would leave, without building it first. Also `restored` (null until then, then
// when it started and ended, in performance.now() time) and `restore()`.
// A module that imports the runtime's memory and exports `nonzero(from, to)`: whether any 8-byte
// word in [from, to) is not zero. A third faster than a JS loop over the restore's unstored pages
// (NB scorer: 4 625 pages, 15-17 -> 11-12 ms). Its text is ZERO_SCAN_WAT in src/python/run.rs, whose
// test checks these bytes against it.
const ZERO_SCAN_WASM = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 2, 13, 1, 1, 109, 6, 109, 101, 109, 111, 114,
  121, 2, 0, 0, 3, 2, 1, 0, 7, 11, 1, 7, 110, 111, 110, 122, 101, 114, 111, 0, 0, 10, 38, 1, 36, 1, 1, 126, 3,
  64, 32, 2, 32, 0, 41, 3, 0, 132, 33, 2, 32, 0, 65, 8, 106, 33, 0, 32, 0, 32, 1, 73, 13, 0, 11, 32, 2, 66, 0,
  82, 11,
]);
const PYODIDE_SNAPSHOT_MAGIC = 0x706e7300; // "\0snp"
const SHIPPED_SNAPSHOT_MAGIC = 0x69707700; // "\0wpi"
const SNAPSHOT_TRAILER_MAGIC = 0x32697077; // "wpi2"
const SNAPSHOT_PAGE = 4096;
function shippedSnapshot(file) {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const word = (at) => view.getUint32(at, true);
  const trailer = file.byteLength - 20;
  if (trailer < 8 || word(0) !== SHIPPED_SNAPSHOT_MAGIC || word(trailer + 16) !== SNAPSHOT_TRAILER_MAGIC) {
    throw new Error("snapshot.bin is not a memory snapshot made by cargo-wasmpack-infer");
  }
  const [start, end, checksum, bodyLength] = [0, 4, 8, 12].map((at) => word(trailer + at));
  const bodyOffset = word(4);
  const snapshot = file.slice(0, bodyOffset);
  // Where each stored page is in the file (-1: all zeros).
  const pages = Math.ceil(bodyLength / SNAPSHOT_PAGE);
  const storedAt = new Int32Array(pages).fill(-1);
  let at = bodyOffset + Math.ceil(pages / 8);
  for (let page = 0; page < pages; page++) {
    if (!(file[bodyOffset + (page >>> 3)] & (1 << (page & 7)))) continue;
    storedAt[page] = at;
    at += Math.min(SNAPSHOT_PAGE, bodyLength - page * SNAPSHOT_PAGE);
  }
  if (at !== trailer) throw new Error("snapshot.bin is cut short or has bytes to spare");
  const pageBytes = (page) => Math.min(SNAPSHOT_PAGE, bodyLength - page * SNAPSHOT_PAGE);
  // The pages holding static data, decoded at instantiation (a fresh buffer is zeroed).
  const firstStatic = Math.floor(start / SNAPSHOT_PAGE);
  const endStatic = Math.min(pages, Math.ceil(end / SNAPSHOT_PAGE));
  let staticPages = null;
  let zeroScan = null;
  const { set } = Int8Array.prototype;
  const ownSet = Object.hasOwn(Int8Array.prototype, "set");
  const state = { snapshot, restored: null };
  const putPages = (heap) => {
    const started = performance.now();
    for (let page = 0; page < pages; page++) {
      if (page === firstStatic && endStatic > firstStatic) {
        set.call(heap, staticPages, page * SNAPSHOT_PAGE);
        page = endStatic - 1;
        continue;
      }
      const from = page * SNAPSHOT_PAGE;
      if (storedAt[page] >= 0) {
        // Stored pages follow each other in the file: one copy for each run of them.
        let last = page;
        while (last + 1 < pages && storedAt[last + 1] >= 0 && last + 1 !== firstStatic) last++;
        const to = storedAt[last] + pageBytes(last);
        set.call(heap, file.subarray(storedAt[page], to), from);
        page = last;
        continue;
      }
      // Most pages not stored were never written since instantiation: reading them is cheaper
      // than writing zeros into them.
      const length = pageBytes(page);
      if (zeroScan.exports.nonzero(from, from + length)) heap.fill(0, from, from + length);
    }
    state.restored = { started, ended: performance.now() };
  };
  const restoreInstantiate = wrapInstantiate({
    instantiated(module, instance) {
      const memory = instance.exports.memory;
      if (staticPages || !(memory instanceof WebAssembly.Memory)) return;
      if (memory.buffer.byteLength < end) throw new Error("snapshot.bin does not fit this pyodide.asm.wasm's memory");
      const initial = new Uint32Array(memory.buffer, start, (end - start) >>> 2);
      let hash = 0x811c9dc5; // FNV-1a over words, as the build computed it
      for (let i = 0; i < initial.length; i++) hash = Math.imul(hash ^ initial[i], 0x01000193);
      if (hash >>> 0 !== checksum) {
        throw new Error("snapshot.bin was made for another pyodide.asm.wasm: its static data differs from this runtime's");
      }
      const decoded = new Uint8Array((endStatic - firstStatic) * SNAPSHOT_PAGE);
      for (let page = firstStatic; page < endStatic; page++) {
        if (storedAt[page] >= 0) {
          decoded.set(file.subarray(storedAt[page], storedAt[page] + pageBytes(page)), (page - firstStatic) * SNAPSHOT_PAGE);
        }
      }
      const body = new Uint32Array(decoded.buffer, start - firstStatic * SNAPSHOT_PAGE, initial.length);
      for (let i = 0; i < initial.length; i++) body[i] ^= initial[i];
      staticPages = decoded.subarray(0, Math.min(decoded.length, bodyLength - firstStatic * SNAPSHOT_PAGE));
      zeroScan = new WebAssembly.Instance(new WebAssembly.Module(ZERO_SCAN_WASM), { m: { memory } });
      new DataView(snapshot.buffer).setUint32(0, PYODIDE_SNAPSHOT_MAGIC, true);
    },
  });
  // Pyodide restores with `HEAP8.set(snapshot.subarray(bodyOffset))`: a view of the header.
  Int8Array.prototype.set = function (source, offset) {
    if (source?.buffer === snapshot.buffer && staticPages && !state.restored && !offset) return putPages(this);
    return set.call(this, source, offset);
  };
  state.restore = () => {
    if (ownSet) Int8Array.prototype.set = set;
    else delete Int8Array.prototype.set;
    restoreInstantiate();
  };
  return state;
}

// SHA-256 in plain JS, as an SRI string: the secondary is read synchronously, and browsers offer
// no synchronous digest. Int32 arithmetic (`| 0`) keeps V8 off doubles: 4.5 MB hashes in ~50 ms.
function sha256Sri(bytes) {
  const primes = [];
  for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p)) primes.push(n);
  const fraction = (x) => (x - Math.floor(x)) * 2 ** 32;
  const k = Int32Array.from(primes, (p) => fraction(Math.cbrt(p)));
  const h = Int32Array.from(primes.slice(0, 8), (p) => fraction(Math.sqrt(p)));
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bytes.length / 2 ** 29));
  view.setUint32(padded.length - 4, (bytes.length * 8) >>> 0);
  const w = new Int32Array(64);
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getInt32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + k[i] + w[i]) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  let binary = "";
  for (const word of h) for (let shift = 24; shift >= 0; shift -= 8) binary += String.fromCharCode((word >>> shift) & 0xff);
  return "sha256-" + btoa(binary);
}

// The SRI string of `bytes` by the algorithm `expected` (an SRI string) names, sha256 or sha384:
// the loader checks what it boots from against it, and the build's runner checks the snapshot the
// same way, so its timed boot pays what the loader's does. Node's own hash is native and
// synchronous: about half WebCrypto's time there (8.6 MiB: 12 ms against 18-29 ms). Imported
// through a variable, which bundlers do not follow.
async function sri(bytes, expected) {
  const algorithm = expected.startsWith("sha256-") ? "sha256" : "sha384";
  if (globalThis.process?.versions?.node) {
    const specifier = "node:crypto";
    const { createHash } = await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
    return `${algorithm}-` + createHash(algorithm).update(bytes).digest("base64");
  }
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm.replace("sha", "SHA-"), bytes));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return `${algorithm}-` + btoa(binary);
}
