// Calls the app's entry with a JSON-able input and returns a plain JS value, destroying every
// proxy it made (a leaked proxy keeps Python objects alive). Inlined into loader.mjs and the
// build's Node runner, so both call the app the same way.
function callEntry(pyodide, entry, input) {
  const argument = pyodide.toPy(input);
  try {
    const result = entry(argument);
    if (result && typeof result.toJs === "function") {
      const value = result.toJs({ create_pyproxies: false });
      result.destroy();
      return value;
    }
    return result;
  } finally {
    if (argument && typeof argument.destroy === "function") argument.destroy();
  }
}
