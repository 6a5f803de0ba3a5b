// Downloads with a progress callback, kept in the Cache API so that a second visit loads the
// model without downloading it again. The cache key carries the server's ETag, so a changed file
// is downloaded again and the old copy dropped.

const CACHE_NAME = 'querylabel-downloads-v1';

async function openCache() {
  try {
    return 'caches' in self ? await caches.open(CACHE_NAME) : null;
  } catch {
    return null; // e.g. storage disabled: download every time
  }
}

/** The file's version as the server states it, or '' when it gives none. */
async function versionOf(url) {
  try {
    const head = await fetch(url, { method: 'HEAD', cache: 'no-store' });
    return head.ok ? (head.headers.get('ETag') ?? '') : '';
  } catch {
    return '';
  }
}

/**
 * The bytes of `url` (same origin), from the cache when its version is there.
 * `onProgress(received, total, fromCache)`; `total` is 0 when unknown.
 */
export async function cachedBytes(url, onProgress = () => {}) {
  const cache = await openCache();
  const version = await versionOf(url);
  const key = new URL(url, location.href);
  key.searchParams.set('version', version);
  if (cache) {
    const hit = await cache.match(key.href);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      onProgress(bytes.length, bytes.length, true);
      return { bytes, fromCache: true };
    }
  }
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${url}: the server answered ${response.status}`);
  const decoded = Number(response.headers.get('X-Decoded-Length'));
  const total = decoded || (response.headers.get('Content-Encoding') ? 0
    : Number(response.headers.get('Content-Length')) || 0);
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received, total, false);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  // Kept in the background: writing 8 MB to the cache took 70-100 ms that the models need not
  // wait for. The Response copies the bytes now, before the caller hands them to the worker.
  if (cache) keep(cache, key, new Response(bytes));
  return { bytes, fromCache: false };
}

/** Stores `response` under `key`, dropping the file's other versions. */
async function keep(cache, key, response) {
  try {
    for (const old of await cache.keys()) {
      if (old.url.split('?')[0] === key.href.split('?')[0]) await cache.delete(old);
    }
    await cache.put(key.href, response);
  } catch {
    // Out of quota: the page still works, it downloads again next time.
  }
}
