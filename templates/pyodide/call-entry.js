// Calls the app's entry with a JSON-able input and returns a plain JS value, destroying every
// proxy it made (a leaked proxy keeps Python objects alive). Inlined into loader.mjs and the
// build's Node runner, so both call the app the same way. With `parts` (the runner's boundary
// pass), pushes the call's [JS → Python, entry, Python → JS] times in ms.
//
// JSON's null is Python's None on both sides, as json.loads and json.dumps have it. Pyodide
// differs both ways: JS null reaches Python as `jsnull` (so `v is None` is false), and None comes
// back as undefined, which JSON.stringify drops from objects ({"a": None} would lose its key). So
// inputs go in with undefined for null (copied only where there is one: the caller's input is not
// changed), and outputs come back with null for undefined.
const isPlainObject = (value) => [Object.prototype, null].includes(Object.getPrototypeOf(value));
// Arrays by index: inputs are often long lists of numbers, and this runs on every call.
function nullAsNone(value) {
  if (value === null) return undefined;
  if (typeof value !== "object") return value;
  let copy = null;
  const replace = (key, item) => {
    if (item === null || typeof item === "object") {
      const converted = nullAsNone(item);
      if (converted !== item) {
        copy ??= Array.isArray(value) ? value.slice() : { ...value };
        copy[key] = converted;
      }
    }
  };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) replace(i, value[i]);
  } else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) replace(key, value[key]);
  }
  return copy ?? value;
}
function noneAsNull(value) {
  if (value === undefined) return null;
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = noneAsNull(value[i]);
  } else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) value[key] = noneAsNull(value[key]);
  }
  return value;
}
function callEntry(pyodide, entry, input, parts) {
  const clock = parts ? () => performance.now() : () => 0;
  const started = clock();
  const argument = pyodide.toPy(nullAsNone(input));
  const converted = clock();
  try {
    const result = entry(argument);
    const computed = clock();
    let value = result;
    if (result && typeof result.toJs === "function") {
      value = result.toJs({ create_pyproxies: false });
      result.destroy();
    }
    value = noneAsNull(value);
    parts?.push([converted - started, computed - converted, clock() - computed]);
    return value;
  } finally {
    if (argument && typeof argument.destroy === "function") argument.destroy();
  }
}
