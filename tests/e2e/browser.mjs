// Debian's Chromium, headless, driven by playwright-core: no browser is ever downloaded. The
// flags keep Chromium off the network (this machine has none) and give it a fresh profile.
// WebGPU comes from SwiftShader with --enable-unsafe-webgpu; without it there is no adapter,
// which is how the CPU fallback is exercised.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
];

/** A browser with its own fresh profile; `webgpu` adds the SwiftShader adapter. */
export async function launch({ webgpu }) {
  const profile = mkdtempSync(join(tmpdir(), 'querylabel-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, ...(webgpu ? ['--enable-unsafe-webgpu'] : [])],
    viewport: { width: 1280, height: 900 },
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/** Opens the demo and waits until both models are loaded and warmed up. */
export async function openDemo(context, url, { timeout = 600_000 } = {}) {
  const page = context.pages()[0] ?? (await context.newPage());
  const requests = [];
  page.on('request', (request) => requests.push(request.url()));
  const consoleErrors = [];
  page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));
  await page.goto(url);
  await page.waitForFunction(() => window.demo && (window.demo.ready || window.demo.error),
    null, { timeout, polling: 250 });
  const error = await page.evaluate(() => window.demo.error);
  if (error) throw new Error(`the demo did not start: ${error}`);
  return { page, requests, consoleErrors };
}

/** Clicks a sample photo and waits for its prediction; returns `window.demo.last`. */
export async function predictSample(page, file, { timeout = 300_000 } = {}) {
  const before = await page.evaluate(() => window.demo.predictions);
  await page.click(`.sample[data-file="${file}"]`);
  await page.waitForFunction((n) => window.demo.predictions > n, before, { timeout, polling: 100 });
  return page.evaluate(() => window.demo.last);
}

/**
 * Runs `action`, which makes the page look at a photo again (a head or the mirror picked), and
 * waits until that prediction is shown and nothing else waits.
 */
export async function rerunAfter(page, action, { timeout = 300_000 } = {}) {
  const before = await page.evaluate(() => window.demo.predictions);
  await action();
  await page.waitForFunction((n) => window.demo.predictions > n && !window.demo.status, before,
    { timeout, polling: 100 });
}
