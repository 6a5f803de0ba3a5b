import { launch, openDemo, predictSample } from './browser.mjs';
import { startServer } from '../../web/serve.mjs';
const dists = { warm: '/work/main/www/dist', nowarm: '/tmp/x/distb' };
const servers = {};
for (const [k, d] of Object.entries(dists)) servers[k] = await startServer(d, 0);
const results = { warm: [], nowarm: [] };
for (let round = 0; round < 4; round++) {
  for (const k of Object.keys(dists)) {
    const b = await launch({ webgpu: false });
    try {
      const d = await openDemo(b.context, `http://127.0.0.1:${servers[k].port}/index.html`);
      await predictSample(d.page, 'COCO_val2014_000000022192.jpg');
      const r = await d.page.evaluate(() => ({ ready: window.demo.loadedAt, first: window.demo.firstPredictionAt, ms: window.demo.lastMilliseconds }));
      results[k].push(r);
    } finally { await b.close(); }
  }
}
for (const k of Object.keys(dists)) console.log(k, results[k].map((r) => `ready ${(r.ready / 1000).toFixed(2)}, first ${(r.first / 1000).toFixed(2)} s (${r.ms.toFixed(0)} ms)`).join(' | '));
for (const s of Object.values(servers)) s.server.close();
