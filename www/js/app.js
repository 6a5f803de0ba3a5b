// The demo page: downloads the bundle of models (one backbone, several heads) with progress
// (cached) and hands it to the inference worker (WebGPU, else the CPU backend; inference.js),
// takes photos from every input, has the worker run the backbone once per photo and the heads
// the visitor chose on it, and shows each head's sorted label probabilities (its prediction
// marked at its own threshold) and attention maps side by side. Heads stored in files of their
// own download when first chosen. Every number comes from the wasm module.
import { cachedBytes } from './download.js';
import { drawOverlay, sizeCanvas } from './heatmap.js';
import { createInference } from './inference.js';
import { wasmBindings } from './wasm.js';

/** The bundle's directory: model.json names the weights file beside it. */
const MODELS_DIR = 'models';
/** Larger files are refused before reading: no photo needs more, and reading one could stall the tab. */
const MAX_FILE_BYTES = 40 * 1024 * 1024;
const GRID_LABELS = 6;

const $ = (selector, root = document) => root.querySelector(selector);
const column = (name) => $(`.model-column[data-model="${name}"]`);

/** State the end-to-end test and the benchmark read; nothing else depends on it. */
const demo = (window.demo = {
  ready: false, error: null, engine: null, fallbackReason: '', warmUpMs: null, loadedAt: null,
  heads: [], predictions: 0, answers: 0, last: null, lastMilliseconds: null, messages: [],
  firstPredictionAt: null, lesson: null, thresholds: {},
  status: '', statusLog: [], pendingSample: null, lastSample: null,
});

const state = {
  wasm: null,
  /** The engine the worker runs on: { gpu, name, fallbackReason }. */
  engine: null,
  /** The manifest as the wasm module reads it (`BundleInfo`): labels and every head. */
  info: null,
  inference: null,
  /** Every head's name, in the manifest's order; `loaded` those in the worker, `chosen` those shown. */
  heads: [], loaded: new Set(), chosen: [],
  labelNames: [], photo: null,
  /** The shown photo's prediction: `prediction` (wasm `PhotoPrediction`) and each head's position in it. */
  result: null,
  shown: {}, busy: false,
  /** The photo to run next: given while the models loaded or another photo ran (the latest wins). */
  pending: null,
  // Per head: the threshold its column marks predictions with. It starts at the head's own
  // value, exactly (the slider's 0.01 steps would round it), until the visitor moves that
  // column's slider.
  thresholds: {},
  /** The main thread's engine, started for the lesson only. */
  lessonEngine: null,
};

/** Shows `text` where the visitor is looking (or hides the message when empty). */
function showMessage(text) {
  const box = $('#message');
  box.textContent = text;
  box.hidden = !text;
  if (!text) return;
  demo.messages.push(text);
  // The results below belong to an earlier photo: they would read as this file's.
  $('#results').hidden = true;
  scrollIntoViewIfHidden(box);
}

/** What the page is doing for the visitor's photo, beside the photo inputs (empty: nothing). */
function showStatus(text) {
  const status = $('#status');
  status.textContent = text;
  status.hidden = !text;
  demo.status = text;
  if (text) demo.statusLog.push(text);
}

function scrollIntoViewIfHidden(element) {
  const { top, bottom } = element.getBoundingClientRect();
  if (top < 0 || bottom > innerHeight) element.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function megabytes(bytes) { return `${(bytes / 1e6).toFixed(1)} MB`; }

/** The bundle's `model.json`, as text. */
async function fetchManifest() {
  const response = await fetch(`${MODELS_DIR}/model.json`, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${MODELS_DIR}/model.json: ${response.status}`);
  return response.text();
}

/** Downloads the main weights file that `manifest` names and starts the worker's models on it. */
async function loadModels(tryGpu, manifest) {
  const bar = $('#progress');
  const text = $('#progress-text');
  const weightsFile = JSON.parse(manifest).weights;
  const { bytes, fromCache } = await cachedBytes(`${MODELS_DIR}/${weightsFile}`, (got, total, cached) => {
    bar.max = total || got; bar.value = got;
    text.textContent = cached ? 'from the cache' : `${megabytes(got)}${total ? ' of ' + megabytes(total) : ''}`;
  });
  const size = bytes.length;
  text.textContent = `${megabytes(size)}${fromCache ? ', from the cache' : ''}; starting the models…`;
  const engine = await state.inference.load(tryGpu, manifest, bytes);
  demo.warmUpMs = engine.warmUpMs;
  return { engine, size, fromCache };
}

/** `head`'s short name for tabs and choices: its loss (`ROLE`), or its name. */
function shortName(name) {
  return name === 'full' ? 'Full' : name.toUpperCase();
}

/** One column per head (hidden until chosen), in the bundle's order, and the choice of heads. */
function buildColumns() {
  const template = $('#column-template');
  $('#columns').replaceChildren(...state.heads.map((name, head) => {
    const root = template.content.firstElementChild.cloneNode(true);
    root.dataset.model = name;
    root.hidden = true;
    $('[data-role="title"]', root).textContent = state.info.headDescription(head) || name;
    $('[data-role="threshold"]', root).addEventListener('input', (event) => {
      setThreshold(name, Number(event.target.value));
      if (hasResult(name)) renderColumn(name);
    });
    $('[data-role="threshold-reset"]', root).addEventListener('click', () => {
      resetThreshold(name);
      if (hasResult(name)) renderColumn(name);
    });
    return root;
  }));
  $('#head-choices').replaceChildren(...state.heads.map((name, head) => {
    const choice = document.createElement('button');
    choice.type = 'button';
    choice.dataset.model = name;
    choice.textContent = shortName(name);
    choice.title = state.info.headDescription(head) || name;
    choice.addEventListener('click', () => toggleHead(name).catch((error) =>
      showMessage(`The ${shortName(name)} head could not be loaded: ${error.message ?? error}`)));
    return choice;
  }));
  showChosen();
}

/** The chosen heads' columns and tabs, and the choices' pressed state. */
function showChosen() {
  for (const choice of $('#head-choices').children) {
    const name = choice.dataset.model;
    choice.setAttribute('aria-pressed', String(state.chosen.includes(name)));
    choice.classList.toggle('on-demand', !state.loaded.has(name));
  }
  for (const root of $('#columns').children) root.hidden = !state.chosen.includes(root.dataset.model);
  $('#head-tabs').replaceChildren(...state.chosen.map((name) => {
    const tab = document.createElement('button');
    tab.type = 'button';
    tab.setAttribute('role', 'tab');
    tab.dataset.model = name;
    tab.textContent = shortName(name);
    tab.title = state.info.headDescription(state.heads.indexOf(name)) || name;
    tab.addEventListener('click', () => chooseColumn(name));
    return tab;
  }));
  const current = $('.model-column.chosen')?.dataset.model;
  chooseColumn(state.chosen.includes(current) ? current : state.chosen[0]);
  demo.heads = [...state.chosen];
}

/**
 * Shows or hides head `name`. A head not loaded yet downloads first (its own weights file) and
 * goes to the worker; the shown photo then runs again, so that its column fills.
 */
async function toggleHead(name) {
  if (state.chosen.includes(name)) {
    if (state.chosen.length === 1) return; // something stays to look at
    state.chosen = state.chosen.filter((n) => n !== name);
    showChosen();
    if (state.photo) render();
    return;
  }
  if (!state.loaded.has(name)) {
    const file = state.info.headFile(state.heads.indexOf(name));
    const choice = $(`#head-choices [data-model="${name}"]`);
    choice.disabled = true;
    try {
      const { bytes } = await cachedBytes(`${MODELS_DIR}/${file}`, (got, total) => {
        showStatus(`Downloading the ${shortName(name)} head: ${megabytes(got)}${total ? ' of ' + megabytes(total) : ''}`);
      });
      showStatus(`Loading the ${shortName(name)} head…`);
      await state.inference.addHead(name, bytes);
      state.loaded.add(name);
    } finally {
      choice.disabled = false;
      if (!state.busy) showStatus('');
    }
  }
  // In the bundle's order, whatever the order of the clicks.
  state.chosen = state.heads.filter((n) => n === name || state.chosen.includes(n));
  showChosen();
  chooseColumn(name);
  await rerunPhoto();
}

/** The photo on screen again (with a changed choice of heads or of the mirror), if there is one. */
async function rerunPhoto() {
  if (!state.photo) return;
  const { bytes, blob, trueLabels, sampleName } = state.photo;
  await predictPhoto(bytes, blob, trueLabels, sampleName);
}

/** The column a phone shows: the others are hidden there, and side by side elsewhere. */
function chooseColumn(name) {
  for (const tab of $('#head-tabs').children) {
    tab.setAttribute('aria-selected', String(tab.dataset.model === name));
  }
  for (const root of $('#columns').children) root.classList.toggle('chosen', root.dataset.model === name);
}

/** Sets `name`'s slider to its head's own threshold and says where that value comes from. */
function resetThreshold(name) {
  const root = column(name);
  const head = state.heads.indexOf(name);
  const own = state.info.decisionThreshold(head);
  state.thresholds[name] = own;
  demo.thresholds[name] = own;
  $('[data-role="threshold"]', root).value = String(own);
  $('[data-role="threshold-value"]', root).textContent = own.toFixed(2);
  const reset = $('[data-role="threshold-reset"]', root);
  reset.textContent = `back to ${own.toFixed(2)}`;
  reset.hidden = true;
  // A value fixed with the exporter's --threshold flag: the flag means nothing to a visitor.
  const recorded = state.info.thresholdRule(head);
  const rule = recorded === 'fixed with --threshold' ? 'set when the model was exported' : recorded;
  const wrong = state.info.thresholdWrongLabelsPerPhoto(head);
  $('[data-role="threshold-note"]', root).textContent = rule === 'default'
    ? `This model records no calibrated threshold; ${own.toFixed(2)} is the default.`
    : `${own.toFixed(2)} is this model's own threshold (${rule})` +
      (wrong === undefined ? '.' : `: ${wrong.toFixed(2)} wrong labels per photo on its validation photos.`);
}

function setThreshold(name, value) {
  const root = column(name);
  state.thresholds[name] = value;
  demo.thresholds[name] = value;
  $('[data-role="threshold-value"]', root).textContent = value.toFixed(2);
  const own = state.info.decisionThreshold(state.heads.indexOf(name));
  $('[data-role="threshold-reset"]', root).hidden = value === own;
}

function renderEngine() {
  const badge = $('#engine');
  badge.dataset.state = state.engine.gpu ? 'gpu' : 'cpu';
  badge.textContent = state.engine.gpu
    ? 'Running on WebGPU'
    : `Running on the CPU backend: ${demo.fallbackReason}`;
}

/** The layer and head choices: as many as the head with the most has. */
function fillAttentionSelectors() {
  const layers = $('#layer-select');
  const heads = $('#head-select');
  const most = (count) => Math.max(0, ...state.heads.map((_, head) => count(head)));
  for (let i = 0; i < most((h) => state.info.attentionLayers(h)); i++) layers.add(new Option(`layer ${i + 1}`, String(i)));
  for (let i = 0; i < most((h) => state.info.attentionHeads(h)); i++) heads.add(new Option(`head ${i + 1}`, String(i)));
}

async function start() {
  const params = new URLSearchParams(location.search);
  // The worker compiles the wasm module while the page's own copy starts and the models download.
  state.inference = createInference();
  const askedForCpu = params.get('backend') === 'cpu';
  const hasWebGpu = 'gpu' in navigator;
  const manifest = await fetchManifest();
  const models = loadModels(!askedForCpu && hasWebGpu, manifest);
  models.catch(() => {}); // awaited below: a failure meanwhile is reported there, once
  // The columns and choices need only the manifest: they are built while the weights download
  // and the worker loads them.
  state.wasm = await wasmBindings();
  state.info = state.wasm.describeBundle(manifest);
  state.heads = state.info.headNames;
  state.labelNames = state.info.labelNames;
  state.loaded = new Set(state.heads.filter((_, head) => state.info.headFile(head) === undefined));
  state.chosen = state.heads.filter((name) => state.loaded.has(name));
  buildColumns();
  state.heads.forEach(resetThreshold);
  fillAttentionSelectors();
  const { engine, size, fromCache } = await models;
  state.engine = engine;
  demo.engine = engine.name;
  demo.fallbackReason = engine.gpu ? ''
    : askedForCpu ? 'asked for with ?backend=cpu'
      : hasWebGpu ? engine.fallbackReason : 'this browser has no WebGPU (navigator.gpu)';
  renderEngine();
  const more = state.heads.length - state.loaded.size;
  // Short enough for one line on a 390 px phone, cached or not.
  $('#progress-text').textContent = `${megabytes(size)}${fromCache ? ' cached' : ''}: ` +
    `${state.loaded.size} heads` + (more ? ` + ${more} on demand` : ' ready');
  demo.loadedAt = performance.now();
  demo.ready = true;
  // A photo given while the models loaded runs now.
  await runPending();
}

/** The lesson's engine, on this thread (its runs train between frames): started when first asked. */
state.startLessonEngine = async () => {
  state.lessonEngine ??= await state.wasm.startEngine(state.engine.gpu);
  return state.lessonEngine;
};

/** Head `name`'s probabilities for the shown photo (it must be among the results). */
state.probabilitiesOf = (name) => state.result.prediction.probabilities(state.result.positions[name]);

/** The head whose prediction the lesson reads: the first single-positive one shown, else the first shown. */
state.lessonHead = () => {
  const shown = shownWithResults();
  return shown.find((name) => state.info.headLabels(state.heads.indexOf(name)) === 'single-positive') ?? shown[0];
};

function hasResult(name) {
  return state.photo && state.result && name in state.result.positions;
}

/** The heads shown whose results for the photo on screen are in (a head just picked is not yet). */
function shownWithResults() {
  return state.chosen.filter(hasResult);
}

/**
 * Runs the backbone and every head on `bytes` and shows the photo (`blob`) and results, or says
 * what is wrong. A photo given while the models load, or while another photo runs, waits and
 * then runs; of several given meanwhile, the latest does.
 */
async function predictPhoto(bytes, blob, trueLabels = null, sampleName = null) {
  if (bytes.length > MAX_FILE_BYTES) {
    showMessage(`That file is ${megabytes(bytes.length)}: too large. Photos up to ${megabytes(MAX_FILE_BYTES)} are accepted.`);
    return;
  }
  state.pending = { bytes, blob, trueLabels, sampleName };
  demo.pendingSample = sampleName;
  if (!demo.ready) {
    showStatus('The models are still loading: your photo runs as soon as they are ready.');
  } else if (state.busy) {
    showStatus('Still looking at the previous photo: yours is next.');
  } else {
    await runPending();
  }
}

/** Runs the pending photo, and any given while it ran, one after another. */
async function runPending() {
  while (state.pending && demo.ready) {
    const { bytes, blob, trueLabels, sampleName } = state.pending;
    state.pending = null;
    state.busy = true;
    showStatus(`Looking at the photo on ${state.engine.name}…`);
    try {
      const mirrorToo = $('#mirror-too').checked;
      const numbers = await state.inference.predict(bytes, mirrorToo, state.chosen);
      demo.answers += 1;
      const result = rebuild(numbers);
      await showPrediction(result, { bytes, blob, trueLabels, sampleName, mirrorToo });
    } catch (error) {
      showMessage(`This file cannot be used: ${error.message ?? error}. Try a JPEG or PNG photo.`);
    } finally {
      state.busy = false;
    }
  }
  showStatus('');
}

/** The worker's numbers as a wasm `PhotoPrediction` of this thread, with each head's position. */
function rebuild(numbers) {
  const prediction = new state.wasm.PhotoPrediction(numbers.milliseconds);
  const positions = {};
  numbers.heads.forEach((head, position) => {
    prediction.addHead(head.probabilities, head.crossAttention, head.attentionHeads,
      numbers.mapHeight, numbers.mapWidth);
    positions[head.name] = position;
  });
  return { prediction, positions, milliseconds: numbers.milliseconds,
    mapHeight: numbers.mapHeight, mapWidth: numbers.mapWidth };
}

/** Shows `result`, the prediction of `photo` ({ bytes, blob, trueLabels, sampleName, mirrorToo }). */
async function showPrediction(result, photo) {
  const { blob, trueLabels, sampleName } = photo;
  const bitmap = await createImageBitmap(blob);
  showMessage('');
  state.photo = { ...photo, bitmap };
  // The previous photo's results live in wasm memory until freed.
  state.result?.prediction.free();
  state.result = result;
  state.shown = {};
  render();
  // The results start below the inputs: bring them into view. On a phone, from the shown
  // model's column where the tabs pick one (else the visitor lands on explanations, the
  // predictions further down; the column's scroll margin keeps its title clear of the tabs).
  // Wider, from the results' heading, when the models' columns would start in the lower part
  // of the screen (their photos and labels below it). At once, not smoothly: a smooth scroll
  // past the sticky tabs overshot the title.
  const phone = $('#head-tabs').offsetParent !== null;
  if (phone) {
    const column = $('.model-column.chosen');
    if (column.getBoundingClientRect().top > innerHeight - 80) column.scrollIntoView({ block: 'start' });
  } else if ($('#columns').getBoundingClientRect().top > innerHeight * 0.6) {
    $('#results').scrollIntoView({ block: 'start' });
  }
  demo.predictions += 1;
  demo.lastSample = sampleName;
  demo.firstPredictionAt ??= performance.now();
  demo.lastMilliseconds = result.milliseconds;
  demo.lastMirrorToo = photo.mirrorToo;
  demo.last = Object.fromEntries(Object.keys(result.positions).map((name) => {
    const probabilities = state.probabilitiesOf(name);
    return [name, {
      ranking: ranking(probabilities).map((i) => state.labelNames[i]),
      probabilities: Array.from(probabilities),
      threshold: threshold(name),
    }];
  }));
  document.dispatchEvent(new CustomEvent('photo-predicted', { detail: { sampleName, trueLabels } }));
}

/** The probability at or above which `name`'s column marks a label as predicted. */
function threshold(name) {
  return state.thresholds[name] ?? Number($('[data-role="threshold"]', column(name)).value);
}

function ranking(probabilities) {
  return Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a]);
}

function selection() {
  return { layer: Number($('#layer-select').value), head: Number($('#head-select').value) };
}

function render() {
  $('#results').hidden = false;
  const truth = state.photo.trueLabels;
  const shown = truth?.map((label) => state.wasm.displayLabel(label)).join(', ');
  $('#true-labels').textContent = truth ? `True labels of this COCO photo: ${shown}` : '';
  const looks = state.photo.mirrorToo ? ' on the photo and its mirror image' : '';
  const columns = shownWithResults();
  $('#timing').textContent = `${state.result.milliseconds.toFixed(0)} ms on ${state.engine.name} ` +
    `for the backbone${looks} and the ${columns.length} heads shown`;
  for (const name of columns) renderColumn(name);
}

/** Head `name`'s attention map of `label` under the current layer and head choice. */
function attentionMap(name, label) {
  const { layer, head } = selection();
  return state.result.prediction.attentionMap(state.result.positions[name], label, layer, head);
}

function renderColumn(name) {
  const probabilities = state.probabilitiesOf(name);
  const order = ranking(probabilities);
  state.shown[name] ??= order[0];
  renderBars(name, order, probabilities);
  renderMap(name);
  renderGrid(name, order, probabilities);
}

function renderBars(name, order, probabilities) {
  const root = column(name);
  const list = $('[data-role="bars"]', root);
  const cutoff = threshold(name);
  const truth = new Set((state.photo.trueLabels ?? []).map((l) => state.info.labelIndex(l)));
  list.replaceChildren(...order.map((label) => {
    const item = document.createElement('li');
    const p = probabilities[label];
    const labelName = state.labelNames[label];
    item.dataset.label = String(label);
    item.classList.toggle('predicted', p >= cutoff);
    item.classList.toggle('true', truth.has(label));
    item.classList.toggle('shown', state.shown[name] === label);
    item.innerHTML = `<span class="name"></span><span class="bar"><span></span></span><span class="value"></span>`;
    $('.name', item).textContent = labelName;
    $('.bar span', item).style.width = `${(p * 100).toFixed(1)}%`;
    $('.value', item).textContent = p.toFixed(2);
    item.addEventListener('click', () => { state.shown[name] = label; renderColumn(name); });
    return item;
  }));
}

function renderMap(name) {
  const root = column(name);
  const canvas = $('[data-role="photo"]', root);
  const label = state.shown[name];
  const { layer, head } = selection();
  const map = attentionMap(name, label);
  sizeCanvas(canvas, state.photo.bitmap, 560);
  drawOverlay(canvas, state.photo.bitmap, map, state.result.mapWidth, state.result.mapHeight, Number($('#opacity').value));
  const where = `${layer < 0 ? 'mean of layers' : `layer ${layer + 1}`}, ${head < 0 ? 'mean of heads' : `head ${head + 1}`}`;
  // The map sums to 1, so its peak times its size says how focused the look is: 1× is an
  // even spread (the colours are scaled to the peak, so an even map still looks bright).
  const focus = map.length ? Math.max(...map) * map.length : 0;
  $('[data-role="map-caption"]', root).textContent = map.length
    ? `Where “${state.labelNames[label]}” looked (${where}); its brightest cell holds ` +
      `${focus.toFixed(1)}× an even share. Click any label to see its map.`
    : 'This model has no per-label attention.';
}

function renderGrid(name, order, probabilities) {
  const root = column(name);
  const grid = $('[data-role="grid"]', root);
  // A head without attention (a linear head) has no maps: the grid would repeat the bare photo.
  grid.hidden = state.info.attentionLayers(state.heads.indexOf(name)) === 0;
  grid.replaceChildren(...(grid.hidden ? [] : order.slice(0, GRID_LABELS)).map((label) => {
    const figure = document.createElement('figure');
    const canvas = document.createElement('canvas');
    sizeCanvas(canvas, state.photo.bitmap, 180);
    drawOverlay(canvas, state.photo.bitmap, attentionMap(name, label),
      state.result.mapWidth, state.result.mapHeight, Number($('#opacity').value));
    const caption = document.createElement('figcaption');
    caption.textContent = `${state.labelNames[label]} ${probabilities[label].toFixed(2)}`;
    figure.append(canvas, caption);
    figure.addEventListener('click', () => { state.shown[name] = label; renderColumn(name); });
    return figure;
  }));
}

async function useFile(file) {
  if (!file) return;
  if (file.size > MAX_FILE_BYTES) {
    showMessage(`“${file.name}” is ${megabytes(file.size)}: too large. Photos up to ${megabytes(MAX_FILE_BYTES)} are accepted.`);
    return;
  }
  markSample(null);
  await predictPhoto(new Uint8Array(await file.arrayBuffer()), file);
}

function markSample(name) {
  for (const button of document.querySelectorAll('.sample')) {
    button.classList.toggle('selected', button.dataset.file === name);
  }
}

async function setupSamples() {
  const response = await fetch('samples/samples.json');
  const samples = await response.json();
  const wasm = await wasmBindings();
  const container = $('#samples');
  for (const sample of samples) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'sample';
    button.dataset.file = sample.file;
    button.innerHTML = '<img alt=""><span></span>';
    $('img', button).src = `samples/${sample.file}`;
    $('img', button).alt = sample.labels.map((l) => wasm.displayLabel(l)).join(', ');
    $('span', button).textContent = sample.labels.map((l) => wasm.displayLabel(l)).join(', ');
    button.addEventListener('click', async () => {
      const blob = await (await fetch(`samples/${sample.file}`)).blob();
      markSample(sample.file);
      await predictPhoto(new Uint8Array(await blob.arrayBuffer()), blob, sample.labels, sample.file);
    });
    container.append(button);
  }
}

function setupInputs() {
  $('#file-input').addEventListener('change', (event) => useFile(event.target.files[0]));
  const zone = $('#drop-zone');
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('dragging'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    useFile(event.dataTransfer.files[0]);
  });
  document.addEventListener('paste', (event) => {
    const item = [...(event.clipboardData?.items ?? [])].find((i) => i.kind === 'file');
    if (item) useFile(item.getAsFile());
  });
  setupWebcam();
  for (const id of ['#opacity', '#layer-select', '#head-select']) {
    $(id).addEventListener('input', () => shownWithResults().forEach(renderColumn));
  }
  // The shown photo again, with or without its mirror image.
  $('#mirror-too').addEventListener('change', rerunPhoto);
}

function setupWebcam() {
  const video = $('#webcam-video');
  let stream = null;
  const close = () => { stream?.getTracks().forEach((t) => t.stop()); stream = null; $('#webcam').hidden = true; };
  $('#webcam-button').addEventListener('click', async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true });
      video.srcObject = stream;
      $('#webcam').hidden = false;
    } catch (error) {
      showMessage(`The webcam is not available: ${error.message}`);
    }
  });
  $('#webcam-close').addEventListener('click', close);
  $('#snapshot-button').addEventListener('click', async () => {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.92));
    close();
    markSample(null);
    await predictPhoto(new Uint8Array(await blob.arrayBuffer()), blob);
  });
}

setupInputs();
setupSamples().catch((error) => showMessage(`The sample photos could not be loaded: ${error.message}`));
start()
  // Imported once the models run: the lesson and its chart are not on the first photo's path.
  .then(() => import('./lesson.js'))
  .then(({ setupLesson }) => setupLesson(state, demo))
  .catch((error) => {
    demo.error = String(error.message ?? error);
    showMessage(`The demo could not start: ${demo.error}`);
  });
