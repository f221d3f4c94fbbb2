// Runs a Pyodide runtime split by binaryen's wasm-split (cargo-wasmpack-infer). The primary
// module imports one placeholder per function left in the secondary module; the first call to any
// of them loads the secondary, whose element segments put the real functions into the table, and
// the call goes on through the table. The load is synchronous because the call comes from inside
// wasm. `readSecondary()` returns the secondary's compiled WebAssembly.Module.
//
// Installed around loadPyodide() only: it wraps WebAssembly.instantiate(Streaming) to add the
// placeholder imports and to keep the runtime's instance; `restore()` puts them back. Inlined
// into loader.mjs and the build's Node runner, so the build verifies the code that ships.
function splitRuntime(readSecondary) {
  const state = { instance: null, secondaryMs: null };
  const { instantiate, instantiateStreaming } = WebAssembly;
  const imports = (module) => WebAssembly.Module.imports(module);
  const table = () => state.instance.exports.__indirect_function_table;
  const placeholders = new Proxy(
    {},
    {
      get: (_, slot) =>
        (...args) => {
          if (state.secondaryMs === null) state.loadSecondary();
          return table().get(Number(slot))(...args);
        },
    },
  );
  state.loadSecondary = () => {
    if (state.secondaryMs !== null) return;
    const started = performance.now();
    new WebAssembly.Instance(readSecondary(), { primary: state.instance.exports });
    state.secondaryMs = performance.now() - started;
  };
  const start = async (module, given) => {
    const split = imports(module).some((i) => i.module === "placeholder");
    const instance = await instantiate(module, split ? { ...given, placeholder: placeholders } : given);
    // The runtime is the split primary, or a runtime instrumented to write a profile; Pyodide's
    // small helper modules, and anything else instantiated meanwhile, pass through untouched.
    if (split || WebAssembly.Module.exports(module).some((e) => e.name === "__write_profile")) {
      state.instance = instance;
    }
    return { module, instance };
  };
  WebAssembly.instantiate = async (source, given) =>
    source instanceof WebAssembly.Module
      ? (await start(source, given)).instance
      : start(await WebAssembly.compile(source), given);
  WebAssembly.instantiateStreaming = async (source, given) =>
    start(await WebAssembly.compileStreaming(source), given);
  state.restore = () => Object.assign(WebAssembly, { instantiate, instantiateStreaming });
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
