// cargo-wasmpack-infer: Emscripten's dynamic-linking set-up at boot, made cheaper without changing
// its outcome (patched into pyodide.asm.mjs by src/python/link_plan.rs, inside its module scope).
// At every boot the glue looks up each of the runtime's exported functions in a map from function
// to table slot, which it first builds by reading every slot of the table: a wrapper made for each
// of ~13 000 functions. The build writes down, in a custom section of pyodide.asm.wasm, the only
// slots a lookup at boot can find (those holding an exported function or an import other than a
// split runtime's placeholders); the map starts from those and takes in the rest of the table at
// the first lookup after linking. A runtime without the section links as Emscripten wrote it.
// With `globalThis.__wasmpackInferCheckLinkPlan` set (the build's check run), linking then throws
// if any slot left out holds a function that was looked up.
//
// The GOT also gets an entry, a `WebAssembly.Global`, for each of the runtime's ~8 600 exports,
// and the glue reads every entry's value twice more to find the undefined ones; a pure-Python app
// asks for a few hundred. Here `updateGOT` computes each value as before (in the same order, so
// the same table slots), but the entry is made the first time anything reads it from `GOT`
// (`wpiLazyGOT`'s proxy, so `Module.GOT` and side modules see Emscripten's object), and the scans
// for undefined entries skip the ones not made: their values are known, so never undefined (-1).
// Declarations, hoisted: `var GOT=wpiLazyGOT();` runs before this part of the glue does.
var wpiGOTEntries, wpiGOTPending;
function wpiLazyGOT() {
  // Emscripten's GOT object: an entry not made yet holds null, which keeps the keys' order.
  wpiGOTEntries = {};
  wpiGOTPending = new Map();
  var pending = (name) => wpiGOTEntries[name] === null && Object.hasOwn(wpiGOTEntries, name);
  return new Proxy(wpiGOTEntries, {
    get: (target, name, receiver) => (pending(name) ? wpiGOTMake(name) : Reflect.get(target, name, receiver)),
    getOwnPropertyDescriptor: (target, name) => {
      if (pending(name)) wpiGOTMake(name);
      return Reflect.getOwnPropertyDescriptor(target, name);
    },
  });
}
function wpiGOTMake(name) {
  var entry = new WebAssembly.Global({ value: "i32", mutable: true });
  entry.value = wpiGOTPending.get(name);
  wpiGOTPending.delete(name);
  return (wpiGOTEntries[name] = entry);
}
// What `GOT[name]??=new Global; GOT[name].value=value` did: the value is taken now (a Global's
// through its valueOf, as that assignment does), the entry made later; one that would read as
// undefined (-1) is made now, so the scans see it.
function wpiGOTSet(name, entry, value) {
  if (entry) {
    entry.value = value;
  } else {
    wpiGOTEntries[name] = null;
    wpiGOTPending.set(name, +value);
    if ((+value | 0) === -1) wpiGOTMake(name);
  }
}

var wpiLinkPlan = null;
var wpiLinkStart = (module) => {
  var [section] = WebAssembly.Module.customSections(module, "wasmpack-infer.link-slots");
  if (!section || functionsInTableMap) return;
  var bytes = new Uint8Array(section);
  var slots = [];
  var slot = 0;
  for (var at = 0; at < bytes.length; ) {
    var delta = 0;
    var shift = 0;
    var byte;
    do {
      byte = bytes[at++];
      delta += (byte & 127) * 2 ** shift;
      shift += 7;
    } while (byte & 128);
    slots.push((slot += delta));
  }
  var lookedUp = globalThis.__wasmpackInferCheckLinkPlan ? new Set() : null;
  wpiLinkPlan = { slots, linking: true, unmapped: null, lookedUp };
};
var wpiMapPlannedSlots = () => {
  for (var slot of wpiLinkPlan.slots) {
    var item = getWasmTableEntry(slot);
    if (item) functionsInTableMap.set(item, slot);
  }
  wpiLinkPlan.unmapped = wasmTable.length;
};
var wpiMapTheRest = () => {
  var planned = new Set(wpiLinkPlan.slots);
  var end = wpiLinkPlan.unmapped;
  wpiLinkPlan.unmapped = null;
  for (var i = 0; i < end; i++) {
    if (planned.has(i)) continue;
    var item = getWasmTableEntry(i);
    if (item) functionsInTableMap.set(item, i);
  }
};
var wpiLinkEnd = () => {
  var plan = wpiLinkPlan;
  if (!plan) return;
  plan.linking = false;
  if (!plan.lookedUp || plan.unmapped === null) return;
  var planned = new Set(plan.slots);
  for (var i = 0; i < plan.unmapped; i++) {
    if (!planned.has(i) && plan.lookedUp.has(getWasmTableEntry(i))) {
      throw new Error(`cargo-wasmpack-infer's link plan left out table slot ${i}, whose function was looked up at boot`);
    }
  }
};
// Emscripten's lookup, over the planned slots while the main module links.
var getFunctionAddress = (func) => {
  if (!functionsInTableMap) {
    functionsInTableMap = new WeakMap();
    if (wpiLinkPlan?.linking) wpiMapPlannedSlots();
    else updateTableMap(0, wasmTable.length);
  } else if (wpiLinkPlan && wpiLinkPlan.unmapped !== null && !wpiLinkPlan.linking) {
    wpiMapTheRest();
  }
  if (wpiLinkPlan?.linking) wpiLinkPlan.lookedUp?.add(func);
  return functionsInTableMap.get(func) || 0;
};

// reportUndefinedSymbols gives each JS function the GOT still needs a module of its own
// (convertJsFunctionToWasm: ~260 compiled and instantiated at every boot). This wraps them all in
// one module, each import re-exported with the signature Emscripten would give it; anything that
// fails here is left to convertJsFunctionToWasm, as before.
var wpiWrapped = new Map();
var wpiWrapJsFunctions = () => {
  var pending = new Map();
  for (var [symName, entry] of Object.entries(wpiGOTEntries)) {
    if (!entry || entry.value != -1) continue;
    var value = resolveGlobalSymbol(symName, true).sym;
    if (typeof value == "function" && typeof value.sig == "string" && !pending.has(value) && !wpiWrapped.has(value) && !getFunctionAddress(value)) {
      pending.set(value, value.sig);
    }
  }
  if (!pending.size) return;
  var leb = (n) => {
    var out = [];
    do {
      var low = n & 127;
      n >>>= 7;
      out.push(n ? low | 128 : low);
    } while (n);
    return out;
  };
  var vector = (items) => [...leb(items.length), ...items.flat()];
  var name = (text) => [...leb(text.length), ...Array.from(text, (c) => c.charCodeAt(0))];
  var section = (id, body) => [id, ...leb(body.length), ...body];
  var types = [];
  var typeIndex = new Map();
  var imports = [];
  var exports = [];
  var env = {};
  for (var [func, sig] of pending) {
    if (!typeIndex.has(sig)) {
      typeIndex.set(sig, types.length);
      types.push([96, ...generateTypePack(sig.slice(1)), ...generateTypePack(sig[0] === "v" ? "" : sig[0])]);
    }
    var index = imports.length;
    env[index] = func;
    imports.push([...name("e"), ...name(String(index)), 0, ...leb(typeIndex.get(sig))]);
    exports.push([...name(String(index)), 0, ...leb(index)]);
  }
  var bytes = Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0, ...section(1, vector(types)), ...section(2, vector(imports)), ...section(7, vector(exports)));
  var instance;
  try {
    instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { e: env });
  } catch {
    return;
  }
  var index = 0;
  for (var [func, sig] of pending) wpiWrapped.set(func, { sig, wrapped: instance.exports[index++] });
};
