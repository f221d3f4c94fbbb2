// Calls the app's entry with a JSON-able input and returns a plain JS value, destroying every
// proxy it made (a leaked proxy keeps Python objects alive). Inlined into loader.mjs and the
// build's Node runner, so both call the app the same way. With `parts` (the runner's boundary
// pass), pushes the call's [JS → Python, entry, Python → JS] times in ms.
function callEntry(pyodide, entry, input, parts) {
  const clock = parts ? () => performance.now() : () => 0;
  const started = clock();
  const argument = pyodide.toPy(input);
  const converted = clock();
  try {
    const result = entry(argument);
    const computed = clock();
    let value = result;
    if (result && typeof result.toJs === "function") {
      value = result.toJs({ create_pyproxies: false });
      result.destroy();
    }
    parts?.push([converted - started, computed - converted, clock() - computed]);
    return value;
  } finally {
    if (argument && typeof argument.destroy === "function") argument.destroy();
  }
}
