// Serves the built demo (trunk's dist/) on 127.0.0.1, compressed: every compressible file is
// brotli- and gzip-compressed once at start and sent in the encoding the browser accepts, with
// its decoded size in X-Decoded-Length so that the page can show download progress. Brotli
// comes from FILE.br where `make web` wrote one (web/precompress.mjs, at brotli's best),
// else it is made at start, quickly.
// Node's standard library only. Usage: node web/serve.mjs DIST_DIR [PORT]
import { createServer } from 'node:http';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, extname, resolve } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import { createHash } from 'node:crypto';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream', '.jpg': 'image/jpeg', '.png': 'image/png',
  '.svg': 'image/svg+xml', '.txt': 'text/plain; charset=utf-8',
};
// JPEG and PNG are compressed already.
export const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.json', '.wasm', '.safetensors', '.svg', '.txt']);
// Smaller files go as they are.
export const MIN_COMPRESSED_BYTES = 1024;
// The suffix of a file's precompressed brotli, beside it; never served at its own URL.
export const PRECOMPRESSED = '.br';

// The brotli of `path` written by web/precompress.mjs, if it is there and not older.
function precompressed(path) {
  const stored = path + PRECOMPRESSED;
  return existsSync(stored) && statSync(stored).mtimeMs >= statSync(path).mtimeMs
    ? readFileSync(stored) : null;
}

export function loadSite(root) {
  const files = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) { walk(path); continue; }
      if (entry.name.endsWith(PRECOMPRESSED)) continue;
      const body = readFileSync(path);
      const ext = extname(entry.name);
      const file = {
        body, type: TYPES[ext] ?? 'application/octet-stream',
        etag: '"' + createHash('sha256').update(body).digest('hex').slice(0, 20) + '"',
      };
      if (COMPRESSIBLE.has(ext) && body.length > MIN_COMPRESSED_BYTES) {
        file.br = precompressed(path) ?? brotliCompressSync(body, { params: {
          [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
        file.gzip = gzipSync(body, { level: 6 });
      }
      files.set('/' + relative(root, path).split('\\').join('/'), file);
    }
  };
  walk(root);
  return files;
}

export function startServer(root, port = 8080, host = '127.0.0.1') {
  const files = loadSite(resolve(root));
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
    const file = files.get(path.endsWith('/') ? path + 'index.html' : path);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (!file) {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    const accepted = String(request.headers['accept-encoding'] ?? '');
    const encoding = file.br && /\bbr\b/.test(accepted) ? 'br'
      : file.gzip && /\bgzip\b/.test(accepted) ? 'gzip' : null;
    const body = encoding ? file[encoding] : file.body;
    const headers = {
      'Content-Type': file.type, 'Content-Length': body.length, ETag: file.etag,
      'X-Decoded-Length': file.body.length, 'Cache-Control': 'no-cache', Vary: 'Accept-Encoding',
      'Cross-Origin-Opener-Policy': 'same-origin', 'X-Content-Type-Options': 'nosniff',
    };
    if (encoding) headers['Content-Encoding'] = encoding;
    if (request.headers['if-none-match'] === file.etag) {
      response.writeHead(304, { ETag: file.etag }).end();
      return;
    }
    response.writeHead(200, headers);
    response.end(request.method === 'HEAD' ? undefined : body);
  });
  return new Promise((resolveListening) => {
    server.listen(port, host, () => resolveListening({ server, files, port: server.address().port }));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [root = 'www/dist', port = '8080'] = process.argv.slice(2);
  statSync(join(root, 'index.html'));
  const { files, port: listening } = await startServer(root, Number(port));
  const sizes = [...files.entries()]
    .filter(([name]) => /\.(wasm|safetensors)$/.test(name))
    .map(([name, f]) => `${name}: ${(f.body.length / 1e6).toFixed(1)} MB, ${(f.br.length / 1e6).toFixed(1)} MB brotli`);
  console.log(sizes.join('\n'));
  console.log(`serving ${root} at http://127.0.0.1:${listening} (Ctrl+C stops)`);
}
