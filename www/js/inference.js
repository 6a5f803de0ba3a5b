// The page's side of the inference worker (inference-worker.js): starts it on the page's
// compiled wasm module (wasm.js) and turns each call into a promise. The page keeps its own
// instance of the module for everything that is not inference: reading the manifest, drawing
// attention maps from the numbers the worker sends, and the lesson.

import { wasmModule } from './wasm.js';

/**
 * Starts a worker that instantiates the wasm module as soon as it is compiled and waits for
 * the models' bytes. Call `load(...)` once, then `addHead` and `predict` as often as needed;
 * each returns a promise.
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
  // Compiling the module overlaps the models' download.
  const ready = wasmModule().then(({ module, moduleUrl }) => send('init', { module, moduleUrl }));
  // A head picked while the main file still downloads waits for it: the worker has no model
  // to add it to before `start`.
  let markStarted;
  const started = new Promise((resolve) => { markStarted = resolve; });
  return {
    /** Starts the engine (WebGPU when `tryGpu` and available) and the main weights file. */
    load: (tryGpu, manifest, weights) =>
      ready.then(() => send('start', { tryGpu, manifest, weights }, [weights.buffer]))
        .then((engine) => { markStarted(); return engine; }),
    /** Loads head `name` from the bytes of its own weights file, once the main file is loaded. */
    addHead: (name, weights) => started.then(() => send('addHead', { name, weights }, [weights.buffer])),
    /** Predicts `bytes` (a copy is sent) with the heads named, in that order. */
    predict: (bytes, mirrorToo, heads) => send('predict', { bytes: bytes.slice(), mirrorToo, heads }),
  };
}
