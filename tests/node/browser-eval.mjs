// Opens URL in headless Chromium and prints the JSON value of EXPRESSION (awaited) evaluated there:
//   node browser-eval.mjs URL EXPRESSION
// exit 1 with the page's console on stderr when it throws.
import { launch } from "./cdp.mjs";

const [url, expression] = process.argv.slice(2);
const browser = await launch();
try {
  await browser.goto(url);
  process.stdout.write(JSON.stringify(await browser.evaluate(expression)));
} catch (error) {
  process.stderr.write(`${error.message}\nconsole:\n${browser.console.join("\n")}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
