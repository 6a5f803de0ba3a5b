// The wasm module (the web crate, through wasm-bindgen), compiled once: the page instantiates
// it for itself and hands the compiled module to the inference worker, which would otherwise
// compile the same 40 MB again, on the same cores, while the first photo waits.
// Trunk.toml keeps Trunk from loading the module; Trunk's preload links name its files (their
// names carry a hash) and start their download before any script runs.

/** The wasm-bindgen JS module's URL and the wasm file's. */
function files() {
  const script = document.querySelector('link[rel="modulepreload"][href$=".js"]');
  const wasm = document.querySelector('link[rel="preload"][href$=".wasm"]');
  if (!script || !wasm) throw new Error('the page does not name its wasm module');
  return { moduleUrl: script.href, wasmUrl: wasm.href };
}

async function compile() {
  const { moduleUrl, wasmUrl } = files();
  let module;
  try {
    module = await WebAssembly.compileStreaming(fetch(wasmUrl));
  } catch {
    // A server that does not send application/wasm: compile from the bytes instead.
    const response = await fetch(wasmUrl);
    if (!response.ok) throw new Error(`${wasmUrl}: the server answered ${response.status}`);
    module = await WebAssembly.compile(await response.arrayBuffer());
  }
  return { module, moduleUrl };
}

async function instantiate() {
  const { module, moduleUrl } = await wasmModule();
  const bindings = await import(moduleUrl);
  await bindings.default({ module_or_path: module });
  return bindings;
}

let compiled = null;
let bindings = null;

/** `{ module, moduleUrl }`: the compiled `WebAssembly.Module` and its bindings' URL. */
export function wasmModule() {
  compiled ??= compile();
  return compiled;
}

/** This thread's instance of the module's bindings. */
export function wasmBindings() {
  bindings ??= instantiate();
  return bindings;
}
