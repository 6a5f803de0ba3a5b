// Writes FILE.br beside every file of the built demo that web/serve.mjs compresses, at brotli's
// best (quality 11, a 16 MB window), where the server's quick compression at start would send
// the wasm module a fifth larger (4.7 MB for 3.8 MB). That takes a minute or so for the wasm
// module, so each result is kept in CACHE_DIR under the SHA-256 of what it compresses, and a
// rebuild that changed nothing costs nothing. Node's standard library only.
// Usage: node web/precompress.mjs DIST_DIR CACHE_DIR
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync }
  from 'node:fs';
import { createHash } from 'node:crypto';
import { extname, join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { COMPRESSIBLE, MIN_COMPRESSED_BYTES, PRECOMPRESSED } from './serve.mjs';

const [root, cache] = process.argv.slice(2);
if (!root || !cache) {
  console.error('usage: node web/precompress.mjs DIST_DIR CACHE_DIR');
  process.exit(2);
}
mkdirSync(cache, { recursive: true });

// Whole or absent: neither the server nor a later run must read half a file.
const writeWhole = (path, bytes) => {
  writeFileSync(path + '.tmp', bytes);
  renameSync(path + '.tmp', path);
};

const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) { walk(path); continue; }
    if (entry.name.endsWith(PRECOMPRESSED) || !COMPRESSIBLE.has(extname(entry.name))) continue;
    const body = readFileSync(path);
    if (body.length <= MIN_COMPRESSED_BYTES) continue;
    const cached = join(cache, createHash('sha256').update(body).digest('hex') + PRECOMPRESSED);
    if (!existsSync(cached)) {
      writeWhole(cached, brotliCompressSync(body, { params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }));
    }
    copyFileSync(cached, path + PRECOMPRESSED);
  }
};
walk(root);
