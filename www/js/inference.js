// The page's side of the inference worker (inference-worker.js): starts it on the same wasm
// module as the page and turns each call into a promise. The page keeps its own instance of the
// module for everything that is not inference: reading the manifest, drawing attention maps from
// the numbers the worker sends, and the lesson.

/** The wasm-bindgen module and wasm file that Trunk's page loads (their names carry a hash). */
function moduleUrls() {
  const script = document.querySelector('link[rel="modulepreload"][href$=".js"]');
  const wasm = document.querySelector('link[rel="preload"][href$=".wasm"]');
  if (!script || !wasm) throw new Error('the page does not name its wasm module');
  return { moduleUrl: script.href, wasmUrl: wasm.href };
}

/**
 * Starts a worker that compiles the wasm module at once and waits for the models' bytes. Call
 * `load(...)` once, then `addHead` and `predict` as often as needed; each returns a promise.
 */
export function createInference() {
  const worker = new Worker(new URL('inference-worker.js', import.meta.url), { type: 'module' });
  const waiting = new Map();
  let nextId = 0;
  const failAll = (message) => {
    for (const { reject } of waiting.values()) reject(new Error(message));
    waiting.clear();
  };
  worker.onmessage = ({ data: { id, value, error } }) => {
    const call = waiting.get(id);
    waiting.delete(id);
    if (error === undefined) call?.resolve(value);
    else call?.reject(new Error(error));
  };
  worker.onerror = (event) => failAll(`the inference worker failed: ${event.message ?? 'no reason given'}`);
  const send = (call, args, transfer = []) => new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    worker.postMessage({ id, call, args }, transfer);
  });
  // At once: compiling the module overlaps the models' download.
  const ready = send('init', moduleUrls());
  return {
    /** Starts the engine (WebGPU when `tryGpu` and available) and the main weights file. */
    load: (tryGpu, manifest, weights) =>
      Promise.all([ready, send('start', { tryGpu, manifest, weights }, [weights.buffer])])
        .then(([, engine]) => engine),
    /** Loads head `name` from the bytes of its own weights file. */
    addHead: (name, weights) => send('addHead', { name, weights }, [weights.buffer]),
    /** Predicts `bytes` (a copy is sent) with the heads named, in that order. */
    predict: (bytes, mirrorToo, heads) => send('predict', { bytes: bytes.slice(), mirrorToo, heads }),
  };
}
