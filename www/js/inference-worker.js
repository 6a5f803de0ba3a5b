// The inference worker: the wasm engine and the models live here, so that decoding a photo and
// running the backbone never hold up the page (the CPU backend computes on the thread that calls
// it, and WebGPU's set-up and read-backs wait here too). inference.js is the page's side. Calls
// run one at a time, in the order they came: a model is never asked two things at once.

let bindings = null;
let model = null;
let queue = Promise.resolve();

const calls = {
  /** Instantiates the page's compiled wasm module here, while the page downloads the models. */
  async init({ moduleUrl, module }) {
    bindings = await import(moduleUrl);
    await bindings.default({ module_or_path: module });
    return {};
  },

  /** Starts the engine and the bundle's main file, and on WebGPU warms it up. */
  async start({ tryGpu, manifest, weights }) {
    const engine = await bindings.startEngine(tryGpu);
    model = engine.loadModel(manifest, new Uint8Array(weights));
    // On WebGPU a first run compiles the shaders, so it is done before the visitor's photo. On
    // the CPU backend it would only delay the page's readiness (by about 0.3 s) to save the
    // first photo about 0.08 s.
    const warmUpMs = engine.gpu ? await model.warmUp() : 0;
    return { gpu: engine.gpu, name: engine.name, fallbackReason: engine.fallbackReason, warmUpMs };
  },

  /** Loads a head from its own weights file. */
  addHead({ name, weights }) {
    model.addHead(name, new Uint8Array(weights));
    return { loaded: model.loadedHeads };
  },

  /** The numbers of one photo's prediction by the heads named, in that order. */
  async predict({ bytes, mirrorToo, heads }) {
    const result = await model.predict(new Uint8Array(bytes), mirrorToo, heads);
    try {
      return {
        milliseconds: result.milliseconds,
        mapHeight: result.mapHeight,
        mapWidth: result.mapWidth,
        heads: heads.map((name, i) => ({
          name,
          probabilities: result.probabilities(i),
          crossAttention: result.crossAttention(i),
          attentionHeads: result.attentionHeads(i),
        })),
      };
    } finally {
      result.free();
    }
  },
};

/** The arrays' buffers, handed over rather than copied. */
function buffersOf(value) {
  return (value?.heads ?? []).flatMap((h) => [h.probabilities.buffer, h.crossAttention.buffer]);
}

self.onmessage = ({ data: { id, call, args } }) => {
  queue = queue
    .then(() => calls[call](args))
    .then(
      (value) => postMessage({ id, value }, buffersOf(value)),
      (error) => postMessage({ id, error: String(error?.message ?? error) }),
    );
};
