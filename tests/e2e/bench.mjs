// Benchmark of the browser demo: the sizes the page downloads, its time to first prediction
// (fresh profile: download, compile, model load, warm-up, then one sample photo), the second
// visit's start (models from the Cache API) and the per-photo latency (the backbone once, then
// the heads shown first; then on the photo and its mirror image; then with every head picked),
// for each backend.
// Prints numbers only; asserts nothing. Usage: node bench.mjs [DIST_DIR]
import { resolve } from 'node:path';
import { startServer } from '../../web/serve.mjs';
import { launch, predictSample, rerunAfter } from './browser.mjs';

const dist = resolve(process.argv[2] ?? '../../www/dist');
const { server, files, port } = await startServer(dist, 0);
const origin = `http://127.0.0.1:${port}`;
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

for (const [name, file] of files) {
  if (/\.(wasm|safetensors)$/.test(name)) {
    console.log(`size ${name}: ${mb(file.body.length)} (${mb(file.br.length)} brotli, ${mb(file.gzip.length)} gzip)`);
  }
}

// A first visit downloads everything but the lesson's features, which wait for the lesson, and
// the heads in files of their own, which wait until a visitor picks them.
const onDemand = (name) => /^\/models\/head-.*\.safetensors$/.test(name);
const transferred = (keep) => [...files.entries()].filter(([name]) => keep(name))
  .reduce((sum, [, file]) => sum + (file.br ?? file.body).length, 0);
const firstVisit = transferred((name) => !name.startsWith('/lesson/') && !onDemand(name));
console.log(`first visit: ${(firstVisit / 1e6).toFixed(2)} MB transferred (brotli where compressible), lesson features and heads on demand aside`);
const headFiles = [...files.keys()].filter(onDemand);
console.log(`heads on demand: ${headFiles.length}, ${(transferred(onDemand) / 1e6 / Math.max(1, headFiles.length)).toFixed(2)} MB each on average (brotli)`);

const samples = [...files.keys()].filter((n) => n.startsWith('/samples/') && n.endsWith('.jpg'))
  .map((n) => n.slice('/samples/'.length));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

for (const webgpu of [true, false]) {
  const browser = await launch({ webgpu });
  try {
    // A visitor who picks a photo as soon as the samples show: it waits for the models, then
    // runs, so the first prediction's time is the page's, not this script's polling.
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    await page.goto(`${origin}/index.html`);
    await page.click(`.sample[data-file="${samples[0]}"]`);
    await page.waitForFunction(() => window.demo.predictions > 0 || window.demo.error, null,
      { timeout: 600_000, polling: 100 });
    const engine = await page.evaluate(() => window.demo.engine);
    const first = await page.evaluate(() => ({
      ready: window.demo.loadedAt, first: window.demo.firstPredictionAt, warmUp: window.demo.warmUpMs,
    }));
    const latencies = [];
    for (const sample of samples) {
      await predictSample(page, sample);
      latencies.push(await page.evaluate(() => window.demo.lastMilliseconds));
    }
    // The same photos, each looked at as it is and mirrored (the page's checkbox).
    await rerunAfter(page, () => page.check('#mirror-too'), { timeout: 600_000 });
    const mirrored = [];
    for (const sample of samples) {
      await predictSample(page, sample);
      mirrored.push(await page.evaluate(() => window.demo.lastMilliseconds));
    }
    const heads = await page.evaluate(() => window.demo.heads);
    // Every head at once: the visitor picks the rest (each downloads and loads once).
    await rerunAfter(page, () => page.uncheck('#mirror-too'), { timeout: 600_000 });
    const picked = performance.now();
    for (const name of await page.$$eval('#head-choices button[aria-pressed="false"]', (b) => b.map((e) => e.dataset.model))) {
      await rerunAfter(page, () => page.click(`#head-choices [data-model="${name}"]`), { timeout: 600_000 });
    }
    const pickSeconds = (performance.now() - picked) / 1000;
    const everyHead = [];
    for (const sample of samples.slice(0, 4)) {
      await predictSample(page, sample);
      everyHead.push(await page.evaluate(() => window.demo.lastMilliseconds));
    }
    const allHeads = await page.evaluate(() => window.demo.heads);
    await page.reload();
    await page.waitForFunction(() => window.demo?.ready, null, { timeout: 600_000 });
    const secondVisit = await page.evaluate(() => window.demo.loadedAt);
    console.log(`${engine}: ready after ${(first.ready / 1000).toFixed(1)} s, first prediction at ` +
      `${(first.first / 1000).toFixed(1)} s after navigation (fresh profile, a sample picked at once; warm-up ` +
      `${first.warmUp.toFixed(0)} ms); ` +
      `second visit ready after ${(secondVisit / 1000).toFixed(1)} s (models from the cache)`);
    console.log(`${engine}: backbone + ${heads.length} heads (${heads.join(', ')}), per-photo latency ` +
      `median ${median(latencies).toFixed(0)} ms (min ${Math.min(...latencies).toFixed(0)}, ` +
      `max ${Math.max(...latencies).toFixed(0)}, ${latencies.length} photos)`);
    console.log(`${engine}: the same with the mirror image too, median ${median(mirrored).toFixed(0)} ms ` +
      `(min ${Math.min(...mirrored).toFixed(0)}, max ${Math.max(...mirrored).toFixed(0)})`);
    console.log(`${engine}: picking the other ${allHeads.length - heads.length} heads one by one took ` +
      `${pickSeconds.toFixed(1)} s (download, load, and the photo again each time); with all ` +
      `${allHeads.length} heads, per-photo latency median ${median(everyHead).toFixed(0)} ms ` +
      `(min ${Math.min(...everyHead).toFixed(0)}, max ${Math.max(...everyHead).toFixed(0)}, ${everyHead.length} photos)`);
  } finally {
    await browser.close();
  }
}
server.close();
