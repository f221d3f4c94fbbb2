// Drives a bundle's demo page (`build --demo`) in headless Chromium through real input events:
//   node demo-page.mjs URL SAMPLES.json SCREENSHOT.png
// SAMPLES.json is a list of grids (width*height values, 0..1, row-major). Each is drawn onto the
// pad with mouse drags, one horizontal stroke per run of inked cells in a row; the label the page
// shows is read back. Prints {"labels": [...], "status": "..."} on stdout; when the page reports a
// loading error instead, prints {"error": name, "status": "..."}.
import { readFile, writeFile } from "node:fs/promises";
import { launch } from "./cdp.mjs";

const [url, samplesPath, screenshotPath] = process.argv.slice(2);
const samples = JSON.parse(await readFile(samplesPath, "utf8"));
const browser = await launch();
try {
  await browser.goto(url);
  await browser.waitFor("document.body.dataset.ready || document.body.dataset.error", 120000);
  const error = await browser.evaluate("document.body.dataset.error ?? null");
  const status = () => browser.evaluate("document.getElementById('status').textContent");
  if (error) {
    process.stdout.write(JSON.stringify({ error, status: await status() }));
  } else {
    const { width, height } = await browser.evaluate("(({ width, height }) => ({ width, height }))(document.getElementById('seen'))");
    const box = await browser.evaluate("(() => { const b = document.getElementById('pad').getBoundingClientRect(); return { x: b.left, y: b.top, w: b.width, h: b.height }; })()");
    const cellW = box.w / width, cellH = box.h / height;
    const labels = [];
    for (const sample of samples) {
      await browser.evaluate("document.getElementById('clear').click()");
      const calls = await browser.evaluate("document.getElementById('latency').textContent");
      for (let row = 0; row < height; row++) {
        let col = 0;
        while (col < width) {
          if (sample[row * width + col] < 0.3) { col++; continue; }
          const start = col;
          while (col < width && sample[row * width + col] >= 0.3) col++;
          const y = box.y + (row + 0.5) * cellH;
          await browser.mouse("mousePressed", box.x + (start + 0.3) * cellW, y);
          await browser.mouse("mouseMoved", box.x + (col - 0.3) * cellW, y);
          await browser.mouse("mouseReleased", box.x + (col - 0.3) * cellW, y);
        }
      }
      // The page predicts on the animation frame after a stroke: wait for a call, then for the
      // frames that follow the last stroke.
      await browser.waitFor(`document.getElementById('latency').textContent !== ${JSON.stringify(calls)}`, 30000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      labels.push(await browser.evaluate("document.getElementById('prediction').dataset.label"));
    }
    process.stdout.write(JSON.stringify({ labels, status: await status() }));
  }
  await writeFile(screenshotPath, await browser.screenshot());
} catch (error) {
  process.stderr.write(`${error.message}\nconsole:\n${browser.console.join("\n")}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
