// End-to-end test of the browser demo: the real page, built by trunk, served compressed on
// 127.0.0.1, in headless Chromium with WebGPU (SwiftShader) and without it (CPU fallback).
// Run with `make test-web` (or `node --test` here after `make web`). Screenshots go to
// $SCREENSHOT_DIR (default ./screenshots).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { startServer } from '../../web/serve.mjs';
import { launch, openDemo, predictSample, rerunAfter } from './browser.mjs';

const DIST = resolve(process.env.DEMO_DIST ?? '../../www/dist');
const SHOTS = resolve(process.env.SCREENSHOT_DIR ?? 'screenshots');
const SAMPLES = JSON.parse(readFileSync(join(DIST, 'samples/samples.json'), 'utf8'));
/** A true label "ranks high" when it is among this many of the 80. */
const HIGH_RANK = 10;
/** Photos checked for their true labels. */
const CHECKED = SAMPLES.slice(0, 3);

mkdirSync(SHOTS, { recursive: true });

let server;
let origin;
before(async () => {
  const started = await startServer(DIST, 0);
  server = started.server;
  origin = `http://127.0.0.1:${started.port}`;
});
after(() => server?.close());

const spaced = (label) => label.replaceAll('_', ' ');

/** A PNG whose header claims `width`×`height` pixels (its data is one empty row). */
function pngClaiming(width, height) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const length = Buffer.alloc(4); length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0); header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.alloc(1))), chunk('IEND', Buffer.alloc(0))]);
}

async function canvasFingerprint(page, selector) {
  return page.$eval(selector, (canvas) => {
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += data[i] * 3 + data[i + 1] * 5 + data[i + 2] * 7;
    return sum;
  });
}

async function setRange(page, selector, value) {
  await page.$eval(selector, (input, v) => {
    input.value = String(v);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

describe('the demo on WebGPU', () => {
  let browser;
  let demo;
  const gpuRankings = {};
  before(async () => {
    browser = await launch({ webgpu: true });
    demo = await openDemo(browser.context, `${origin}/index.html`);
  });
  after(() => browser?.close());

  test('runs on WebGPU and says so', async () => {
    const engine = await demo.page.evaluate(() => window.demo.engine);
    assert.equal(engine, 'WebGPU');
    assert.match(await demo.page.textContent('#engine'), /WebGPU/);
  });

  test('loads one wasm module and one bundle: one weights file, one column per head, the other heads on offer', async () => {
    const heads = await demo.page.evaluate(() => window.demo.heads);
    assert.deepEqual(heads, ['full', 'wan', 'em']);
    const weights = new Set(demo.requests.filter((url) => url.endsWith('.safetensors') && url.includes('/models/')));
    assert.deepEqual([...weights], [`${origin}/models/model.safetensors`]);
    // One wasm module, downloaded and compiled once: the worker gets the page's compiled copy.
    assert.equal(demo.requests.filter((url) => url.endsWith('.wasm')).length, 1);
    const columns = await demo.page.$$eval('.model-column:not([hidden])', (c) => c.map((e) => e.dataset.model));
    assert.deepEqual(columns, heads);
    // Every single-positive loss has a head to pick, loaded only when picked.
    const offered = await demo.page.$$eval('#head-choices button', (b) => b.map((e) => e.dataset.model));
    for (const loss of ['em-linear', 'an', 'an-ls', 'epr', 'role', 'hill', 'splc', 'll-r', 'll-ct', 'll-cp', 'em-apl', 'gr']) {
      assert.ok(offered.includes(loss), `no ${loss} head on offer: ${offered}`);
    }
    const more = offered.length - heads.length;
    assert.match(await demo.page.textContent('#progress-text'), new RegExp(`: 3 heads \\+ ${more} on demand$`));
  });

  test("ranks each sample photo's true labels high with every head", async () => {
    const high = { full: 0, wan: 0, em: 0 };
    const misses = [];
    let total = 0;
    for (const sample of CHECKED) {
      const last = await predictSample(demo.page, sample.file);
      gpuRankings[sample.file] = last;
      total += sample.labels.length;
      assert.deepEqual(Object.keys(last), ['full', 'wan', 'em']);
      for (const [model, result] of Object.entries(last)) {
        for (const label of sample.labels) {
          const rank = result.ranking.indexOf(spaced(label));
          if (rank >= 0 && rank < HIGH_RANK) high[model] += 1;
          else misses.push(`${model}: ${label} of ${sample.file} at ${rank + 1}`);
        }
      }
      const bars = await demo.page.$$eval('.model-column[data-model="full"] .bars li', (items) => items.length);
      assert.equal(bars, 80);
    }
    // The fully supervised head finds most true labels in its top 10 (the one trained on every
    // photo ranks the dog of 22192 13th, the person of 25560 20th and the fork of 62554 11th:
    // 8 of 11, where chance gives about 1 in 8); the two that saw a single positive label per
    // training photo find most of them too (10 of 11 each).
    assert.ok(high.full >= total * 0.7, misses.join('; '));
    assert.ok(high.wan >= total * 0.6, misses.join('; '));
    assert.ok(high.em >= total * 0.6, misses.join('; '));
    assert.match(await demo.page.textContent('#timing'), /ms on WebGPU for the backbone and the 3 heads shown/);
    await demo.page.screenshot({ path: join(SHOTS, 'demo-webgpu.png'), fullPage: true });
  });

  test('draws the attention map of the clicked label over the photo', async () => {
    const photo = '.model-column[data-model="full"] canvas[data-role="photo"]';
    await setRange(demo.page, '#opacity', 0);
    const plain = await canvasFingerprint(demo.page, photo);
    await setRange(demo.page, '#opacity', 0.8);
    const withMap = await canvasFingerprint(demo.page, photo);
    assert.notEqual(withMap, plain, 'the heat map changes the photo canvas');
    await demo.page.click('.model-column[data-model="full"] .bars li:nth-child(5)');
    const otherLabel = await canvasFingerprint(demo.page, photo);
    assert.notEqual(otherLabel, withMap, "another label's map is another picture");
    const caption = await demo.page.textContent('.model-column[data-model="full"] [data-role="map-caption"]');
    // A map sums to 1, so its brightest cell holds at least an even share (1×) of the map.
    const focus = Number(caption.match(/looked .*holds ([\d.]+)× an even share/)?.[1]);
    assert.ok(focus >= 1 && focus <= 81, caption); // 9×9 positions at most
    const grid = await demo.page.$$eval('.model-column[data-model="full"] .map-grid canvas', (c) => c.length);
    assert.equal(grid, 6);
    // The other head draws its own map over the same photo.
    const wanPhoto = '.model-column[data-model="wan"] canvas[data-role="photo"]';
    await setRange(demo.page, '#opacity', 0);
    const wanPlain = await canvasFingerprint(demo.page, wanPhoto);
    await setRange(demo.page, '#opacity', 0.8);
    assert.notEqual(await canvasFingerprint(demo.page, wanPhoto), wanPlain, 'the wan head draws its map');
    await demo.page.selectOption('#head-select', '0');
    assert.notEqual(await canvasFingerprint(demo.page, photo), otherLabel, 'one head differs from the mean');
    await demo.page.selectOption('#head-select', '-1');
    await demo.page.locator('#results').screenshot({ path: join(SHOTS, 'attention.png') });
  });

  test('refuses a non-image, a truncated photo and a huge image with a clear message, then keeps working', async () => {
    const input = demo.page.locator('#file-input');
    const message = demo.page.locator('#message');
    await input.setInputFiles({ name: 'notes.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('these are not pixels') });
    await message.waitFor({ state: 'visible' });
    assert.match(await message.textContent(), /cannot be used: not a readable image/);
    const photo = readFileSync(join(DIST, 'samples', CHECKED[0].file));
    await input.setInputFiles({ name: 'cut.jpg', mimeType: 'image/jpeg', buffer: photo.subarray(0, photo.length / 2) });
    await demo.page.waitForFunction(() => /truncated JPEG/.test(document.querySelector('#message').textContent));
    await input.setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: pngClaiming(40_000, 40_000) });
    await demo.page.waitForFunction(() => /too large/.test(document.querySelector('#message').textContent));
    await demo.page.screenshot({ path: join(SHOTS, 'bad-file.png') });
    const last = await predictSample(demo.page, CHECKED[1].file);
    assert.ok(last.full.ranking.length === 80);
    assert.equal(await message.isHidden(), true, 'a good photo clears the message');
  });

  test('queues a photo given during a prediction, and the latest one given runs next', async () => {
    const { page } = demo;
    const [first, replaced, latest] = CHECKED.map((sample) => sample.file);
    const before = await page.evaluate(() => window.demo.predictions);
    await page.click(`.sample[data-file="${first}"]`);
    await page.waitForFunction(() => /^Looking at the photo/.test(window.demo.status), null, { polling: 20 });
    assert.equal(await page.isVisible('#status'), true, 'the page shows that it is working');
    for (const file of [replaced, latest]) {
      await page.click(`.sample[data-file="${file}"]`);
      await page.waitForFunction((f) => window.demo.pendingSample === f, file, { polling: 20 });
    }
    assert.match(await page.textContent('#status'), /yours is next/);
    await page.waitForFunction((n) => window.demo.predictions >= n + 2 && !window.demo.status, before,
      { timeout: 300_000, polling: 100 });
    assert.equal(await page.evaluate(() => window.demo.predictions), before + 2, 'a replaced photo never runs');
    assert.equal(await page.evaluate(() => window.demo.lastSample), latest);
    assert.equal(await page.isHidden('#status'), true);
  });

  test('makes no request outside its own origin', () => {
    const foreign = demo.requests.filter((url) => !url.startsWith(origin) && !url.startsWith('blob:') && !url.startsWith('data:'));
    assert.deepEqual(foreign, []);
  });

  describe('without WebGPU', () => {
    let cpu;
    let cpuDemo;
    before(async () => {
      cpu = await launch({ webgpu: false });
      cpuDemo = await openDemo(cpu.context, `${origin}/index.html`);
    });
    after(() => cpu?.close());

    test('falls back to the CPU backend, says why, and gives the same top labels', async () => {
      assert.equal(await cpuDemo.page.evaluate(() => window.demo.engine), 'CPU (wasm)');
      assert.match(await cpuDemo.page.textContent('#engine'), /CPU backend: .+/);
      for (const sample of CHECKED.slice(0, 2)) {
        const last = await predictSample(cpuDemo.page, sample.file);
        for (const model of Object.keys(last)) {
          const gpu = gpuRankings[sample.file][model];
          assert.deepEqual(new Set(last[model].ranking.slice(0, 5)), new Set(gpu.ranking.slice(0, 5)),
            `${model} on ${sample.file}: CPU ${last[model].ranking.slice(0, 5)} vs WebGPU ${gpu.ranking.slice(0, 5)}`);
          const largest = Math.max(...last[model].probabilities.map((p, i) => Math.abs(p - gpu.probabilities[i])));
          assert.ok(largest < 0.02, `${model}: CPU and WebGPU probabilities differ by ${largest}`);
        }
      }
      await cpuDemo.page.screenshot({ path: join(SHOTS, 'demo-cpu.png'), fullPage: true });
      await cpuDemo.page.setViewportSize({ width: 390, height: 844 });
      // A phone shows one model at a time; its tabs pick which.
      const shown = () => cpuDemo.page.$$eval('.model-column',
        (columns) => columns.filter((c) => c.offsetParent !== null).map((c) => c.dataset.model));
      const tabs = await cpuDemo.page.$$eval('#head-tabs [role="tab"]', (t) => t.map((b) => b.dataset.model));
      assert.equal(tabs.length, Object.keys(gpuRankings[CHECKED[0].file]).length);
      assert.deepEqual(await shown(), [tabs[0]]);
      await cpuDemo.page.click(`#head-tabs [data-model="${tabs[1]}"]`);
      assert.deepEqual(await shown(), [tabs[1]]);
      // A photo chosen at the top of the page brings the shown model's column into view, its
      // title just below the tabs.
      await cpuDemo.page.evaluate(() => window.scrollTo(0, 0));
      await predictSample(cpuDemo.page, CHECKED[0].file);
      await cpuDemo.page.waitForFunction(() => {
        const tabs = document.querySelector('#head-tabs').getBoundingClientRect();
        const column = document.querySelector('.model-column.chosen').getBoundingClientRect();
        return tabs.top >= 0 && column.top >= tabs.bottom && column.top < 200;
      }, null, { timeout: 10_000 });
      await cpuDemo.page.screenshot({ path: join(SHOTS, 'demo-mobile.png'), fullPage: true });
      // The download status reads on one line.
      const statusLines = await cpuDemo.page.$eval('#progress-text', (text) =>
        text.getBoundingClientRect().height / parseFloat(getComputedStyle(text).fontSize));
      assert.ok(statusLines < 2, `the download status is ${statusLines} font sizes tall`);
      // Nothing on a phone may make the whole page scroll sideways.
      const widest = await cpuDemo.page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(widest <= 390, `the page is ${widest} px wide in a 390 px phone viewport`);
      await cpuDemo.page.setViewportSize({ width: 1280, height: 900 });
      // Wider, every model shows again, side by side, and the tabs are gone.
      assert.deepEqual(await shown(), tabs);
      assert.equal(await cpuDemo.page.isVisible('#head-tabs'), false);
      // A photo chosen at the top of the page brings the models' columns into the upper part
      // of the screen.
      await cpuDemo.page.evaluate(() => window.scrollTo(0, 0));
      await predictSample(cpuDemo.page, CHECKED[1].file);
      const columnsTop = await cpuDemo.page.$eval('#columns', (c) => c.getBoundingClientRect().top);
      assert.ok(columnsTop >= 0 && columnsTop < 900 * 0.6, `the columns start at ${columnsTop} px`);
    });

    test('looks at the mirror image too when asked, for the photo on screen', async () => {
      const page = cpuDemo.page;
      const file = CHECKED[0].file;
      const plain = await predictSample(page, file);
      const rerun = async (change) => {
        await rerunAfter(page, change);
        return page.evaluate(() => ({
          last: window.demo.last, mirrorToo: window.demo.lastMirrorToo, sample: window.demo.lastSample,
        }));
      };
      const both = await rerun(() => page.check('#mirror-too'));
      assert.equal(both.mirrorToo, true);
      assert.equal(both.sample, file);
      assert.match(await page.textContent('#timing'), /on the photo and its mirror image and the 3 heads shown/);
      for (const model of Object.keys(plain)) {
        const moved = Math.max(...both.last[model].probabilities.map((p, i) => Math.abs(p - plain[model].probabilities[i])));
        assert.ok(moved > 1e-4, `${model}: the mirror changed nothing`);
      }
      const again = await rerun(() => page.uncheck('#mirror-too'));
      assert.equal(again.mirrorToo, false);
      for (const model of Object.keys(plain)) {
        assert.deepEqual(again.last[model].probabilities, plain[model].probabilities);
      }
    });

    test('runs inference in a worker: the page keeps responding while a photo is looked at', async () => {
      const { page } = cpuDemo;
      const workers = page.workers().map((w) => w.url());
      assert.ok(workers.some((url) => url.endsWith('/js/inference-worker.js')), `workers: ${workers}`);
      // The mirror too, for a longer prediction (checking it runs the photo on screen again).
      const mirrored = (check) => rerunAfter(page,
        () => (check ? page.check('#mirror-too') : page.uncheck('#mirror-too')));
      await mirrored(true);
      // A 10 ms timer on the page's thread, until the worker's answer arrives: a prediction on
      // this thread (about 300 ms on the CPU backend with the mirror) would stall it.
      await page.evaluate(() => {
        const answers = window.demo.answers;
        window.timerGaps = [];
        let last = performance.now();
        const timer = setInterval(() => {
          const now = performance.now();
          if (window.demo.answers !== answers) { clearInterval(timer); return; }
          window.timerGaps.push(now - last);
          last = now;
        }, 10);
      });
      await predictSample(page, CHECKED[1].file);
      const { gaps, milliseconds } = await page.evaluate(() => ({
        gaps: window.timerGaps, milliseconds: window.demo.lastMilliseconds }));
      await mirrored(false);
      const longest = Math.max(...gaps);
      console.log(`page timer: ${gaps.length} ticks, longest gap ${longest.toFixed(0)} ms, during a ${milliseconds.toFixed(0)} ms prediction`);
      assert.ok(gaps.length >= 5, `${gaps.length} ticks`);
      assert.ok(longest < Math.max(100, milliseconds / 2), `the page stalled for ${longest} ms`);
    });

    test('downloads a head when it is picked, and shows and runs only the heads picked, a linear one too', async () => {
      const { page, requests } = cpuDemo;
      const headFile = `${origin}/models/head-role.safetensors`;
      assert.equal(requests.includes(headFile), false, 'not before it is picked');
      await predictSample(page, CHECKED[0].file);
      // The photo on screen runs again with the new head.
      await rerunAfter(page, () => page.click('#head-choices [data-model="role"]'));
      assert.ok(requests.includes(headFile));
      const last = await page.evaluate(() => window.demo.last);
      assert.deepEqual(Object.keys(last), ['full', 'wan', 'em', 'role']);
      assert.equal(last.role.probabilities.length, 80);
      assert.deepEqual(await page.evaluate(() => window.demo.heads), ['full', 'wan', 'em', 'role']);
      assert.match(await page.textContent('#timing'), /and the 4 heads shown/);
      assert.equal(await page.isVisible('.model-column[data-model="role"]'), true);
      assert.match(await page.textContent('.model-column[data-model="role"] h3'), /ROLE loss/);
      // Unpicked, a head leaves the page and the next photo runs without it.
      await page.click('#head-choices [data-model="wan"]');
      assert.equal(await page.isVisible('.model-column[data-model="wan"]'), false);
      const next = await predictSample(page, CHECKED[1].file);
      assert.deepEqual(Object.keys(next), ['full', 'em', 'role']);
      assert.match(await page.textContent('#timing'), /and the 3 heads shown/);
      await page.click('#head-choices [data-model="wan"]');
      await page.click('#head-choices [data-model="role"]');
      await page.waitForFunction(() => !window.demo.status, null, { timeout: 300_000 });
      // The linear head ranks labels too, and says that it has no map to draw.
      await rerunAfter(page, () => page.click('#head-choices [data-model="em-linear"]'));
      const linear = await page.evaluate(() => window.demo.last['em-linear']);
      assert.equal(linear.probabilities.length, 80);
      assert.match(await page.textContent('.model-column[data-model="em-linear"] [data-role="map-caption"]'),
        /no per-label attention/);
      assert.equal(await page.isVisible('.model-column[data-model="em-linear"] [data-role="grid"]'), false,
        'no grid of maps that would repeat the bare photo');
      await page.click('#head-choices [data-model="em-linear"]');
      await page.waitForFunction(() => !window.demo.status, null, { timeout: 300_000 });
      assert.deepEqual(await page.evaluate(() => window.demo.heads), ['full', 'wan', 'em']);
    });

    test('a photo given before the models are ready waits for them, then runs', async () => {
      const page = await cpu.context.newPage();
      // Hold the models back, so that the photo is surely given before they are ready.
      let release;
      const held = new Promise((resolve) => { release = resolve; });
      await page.route('**/models/model.json', async (route) => { await held; await route.continue(); });
      await page.goto(`${origin}/index.html`);
      const file = CHECKED[0].file;
      await page.waitForSelector(`.sample[data-file="${file}"] img`);
      await page.click(`.sample[data-file="${file}"]`);
      await page.waitForFunction((f) => window.demo.pendingSample === f, file, { polling: 50 });
      assert.equal(await page.evaluate(() => window.demo.ready), false);
      assert.match(await page.textContent('#status'), /still loading: your photo runs as soon/);
      release();
      await page.waitForFunction(() => window.demo.predictions > 0, null, { timeout: 600_000, polling: 250 });
      const seen = await page.evaluate(() => ({ last: window.demo.lastSample, messages: window.demo.messages }));
      assert.equal(seen.last, file);
      assert.deepEqual(seen.messages, [], 'no "try again": the photo waited');
      await page.close();
    });

    // On SwiftShader WebGPU is emulated on the CPU and trains slower than the CPU backend, so
    // the lesson is tested here.
    test("the lesson shows each loss's targets and trains six heads side by side", async () => {
      const sample = CHECKED.find((s) => s.labels.length >= 3) ?? CHECKED[0];
      await predictSample(cpuDemo.page, sample.file);
      const targets = await cpuDemo.page.evaluate(() => window.demo.targets);
      assert.deepEqual(targets.losses, ['bce', 'an', 'an-ls', 'wan', 'epr', 'role',
        'hill', 'splc', 'll-r', 'll-ct', 'em', 'gr']);
      // The second row is a true label the visitor did not keep: BCE says 1, AN says 0, EPR ignores it.
      const cells = await cpuDemo.page.$$eval('#targets tbody tr:nth-child(2) td', (tds) => tds.map((td) => td.textContent));
      assert.equal(cells[2], '1');
      assert.equal(cells[3], '0');
      assert.equal(cells[6], 'ignored');
      // The later losses in their own table: each pulls the kept positive (first row) to 1.
      const later = await cpuDemo.page.$$eval('#targets-later thead th', (ths) => ths.map((th) => th.textContent));
      assert.deepEqual(later.slice(2), ['Hill', 'SPLC', 'LL-R', 'LL-Ct', 'EM', 'GR']);
      const kept = await cpuDemo.page.$$eval('#targets-later tbody tr:first-child td', (tds) => tds.map((td) => td.textContent));
      for (const column of [4, 5, 6, 7]) assert.match(kept[column], /^1( ×|$)/, `kept positive: ${kept}`);
      await cpuDemo.page.click('#train-button');
      await cpuDemo.page.waitForFunction(() => window.demo.lesson?.done || window.demo.lesson?.error,
        null, { timeout: 600_000, polling: 500 });
      const lesson = await cpuDemo.page.evaluate(() => window.demo.lesson);
      assert.equal(lesson.error, undefined);
      const first = lesson.history[0].maps;
      const last = lesson.history.at(-1).maps;
      const report = lesson.losses.map((l, i) => `${l} ${first[i].toFixed(1)}→${last[i].toFixed(1)}`).join(', ');
      console.log(`lesson: ${report} after ${lesson.history.at(-1).epochs.toFixed(1)} epochs in ${lesson.seconds.toFixed(0)} s`);
      lesson.losses.forEach((loss, i) => assert.ok(last[i] > first[i] + 5, `${loss} learns: ${report}`));
      const at = (loss) => last[lesson.losses.indexOf(loss)];
      // The ordering of Cole et al.: full labels above EPR and ROLE, both above assume-negative.
      assert.ok(at('bce') > Math.max(at('epr'), at('role')), `full labels lead: ${report}`);
      assert.ok(Math.min(at('epr'), at('role')) > at('an'), `EPR and ROLE beat AN: ${report}`);
      await cpuDemo.page.locator('#lesson').screenshot({ path: join(SHOTS, 'lesson.png') });
    });

    test('a second visit takes the models from the cache', async () => {
      await cpuDemo.page.reload();
      await cpuDemo.page.waitForFunction(() => window.demo?.ready, null, { timeout: 300_000 });
      assert.match(await cpuDemo.page.textContent('#progress-text'), /cached/);
      // Its longer download status still fits a phone without making the page scroll sideways.
      await cpuDemo.page.setViewportSize({ width: 390, height: 844 });
      const widest = await cpuDemo.page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(widest <= 390, `the page is ${widest} px wide in a 390 px phone viewport`);
      await cpuDemo.page.setViewportSize({ width: 1280, height: 900 });
    });
  });
});
