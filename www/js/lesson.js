// The single-positive lesson: for a sample photo and the one label it keeps, every loss's
// training target per label (computed by the wasm module from the losses' own code), and live
// training of linear heads with five losses side by side, plotting held-out mAP.
import { cachedBytes } from './download.js';
import { drawChart, LOSS_COLOURS } from './chart.js';

const EVALUATIONS_PER_EPOCH = 2;

const LOSS_TITLES = {
  bce: 'Full labels (BCE)', an: 'AN', 'an-ls': 'AN-LS', wan: 'WAN', epr: 'EPR', role: 'ROLE',
  hill: 'Hill', splc: 'SPLC', 'll-r': 'LL-R', 'll-ct': 'LL-Ct', em: 'EM', gr: 'GR',
};

/** The losses that came after Cole et al., shown in a second table. */
const LATER_LOSSES = new Set(['hill', 'splc', 'll-r', 'll-ct', 'em', 'gr']);

const LOSS_NOTES = {
  bce: 'Uses every true label: 1 where present, 0 where absent. The upper bound; single-positive training has to do without these labels.',
  an: '“Assume negative”: every label but the kept one becomes a hard 0 — so the photo’s other true labels (✓) are taught as absent, as firmly as the real negatives.',
  'an-ls': 'Assume negative with label smoothing: targets 0.1 and 0.9 instead of 0 and 1, so a wrong negative costs less.',
  wan: '“Weak assume negative”: still 0, but each assumed negative weighs 1/(K−1), so the one known positive counts as much as all the negatives together.',
  epr: '“Expected positive regularisation”: only the kept positive has a target; the unknown labels are left alone, and one term per batch keeps the expected number of positives near COCO’s average per photo.',
  role: '“Regularised online label estimation”: a learnable guess of every unknown label is trained with the classifier, and each pulls the other. Here the guess is fitted for this photo against the single-positive model’s prediction.',
  hill: 'Hill loss (Zhang et al. 2021): an assumed negative costs (1.5 − p)·p², a hill rather than a slope, so a label the model already rates likely — perhaps a missed positive — is pushed down less than under AN.',
  splc: 'Self-paced loss correction (Zhang et al. 2021): from the second epoch on, an unknown label the model rates above 0.6 is trained as a positive in that batch; the others are focal-weighted negatives.',
  'll-r': '“Large loss rejection” (Kim et al. 2022): assume negative, but the unknown labels with the largest loss — those the model believes present — get no loss at all. The rejected share grows every epoch; shown here half-way through training.',
  'll-ct': '“Large loss correction”: the same largest losses are flipped to positive for that batch instead. LL-Cp flips them for good (the released code, asked for LL-Cp, runs this one).',
  em: '“Entropy maximisation” (Zhou et al. 2022): unknown labels are neither 0 nor 1; the loss keeps them uncertain, pulling each gently towards 0.5. EM+APL later makes the most confidently absent ones soft negatives.',
  gr: '“Generalised robust loss” (Chen et al. 2024): each unknown label gets a blend of a robust pull towards 1 and one towards 0, set by the current prediction and down-weighted where the model is surest; the blend moves over the epochs.',
};

const $ = (selector, root = document) => root.querySelector(selector);

function formatTarget(target, weight) {
  if (target === undefined) return { text: 'ignored', ignored: true };
  const value = Math.abs(target - Math.round(target)) < 0.005 ? String(Math.round(target)) : target.toFixed(2);
  const shownWeight = Math.abs(weight - 1) > 0.005 ? ` ×${weight.toFixed(weight < 0.1 ? 3 : 2)}` : '';
  return { text: value, weight: shownWeight, ignored: false };
}

function renderTargets(state, demo, trueLabels, kept) {
  const names = state.labelNames;
  const truth = trueLabels.map((label) => state.info.labelIndex(label)).filter((i) => i !== undefined);
  const multiHot = new Float32Array(names.length);
  truth.forEach((i) => { multiHot[i] = 1; });
  // The head trained from one positive label per image: every loss is read at its prediction
  // (what LL rejects, SPLC corrects, GR weighs), and ROLE's estimate is fitted to it.
  const single = state.probabilitiesOf(state.lessonHead());
  const targets = state.wasm.lossTargets(multiHot, kept, single);
  const losses = state.wasm.targetLosses();
  const others = Array.from(single.keys()).filter((i) => !truth.includes(i))
    .sort((a, b) => single[b] - single[a]);
  const rows = [kept, ...truth.filter((i) => i !== kept), ...others.slice(0, 2), ...others.slice(-2)];
  const fillTable = (table, columns) => {
    table.innerHTML = `<thead><tr><th>label</th><th>truth</th>${
      columns.map((l) => `<th>${LOSS_TITLES[losses[l]] ?? losses[l]}</th>`).join('')}</tr></thead><tbody></tbody>`;
    const body = $('tbody', table);
    for (const label of rows) {
      const row = document.createElement('tr');
      row.classList.toggle('kept', label === kept);
      const isTrue = truth.includes(label);
      const status = label === kept ? 'kept positive' : isTrue ? 'present, unobserved' : 'absent, unobserved';
      row.innerHTML = `<td></td><td class="muted">${status}</td>`;
      $('td', row).textContent = names[label];
      columns.forEach((l) => {
        const cell = document.createElement('td');
        const { text, weight, ignored } = formatTarget(targets.target(l, label), targets.weight(l, label));
        cell.textContent = text;
        cell.classList.toggle('ignored', ignored);
        if (weight) {
          const small = document.createElement('span');
          small.className = 'weight';
          small.textContent = weight;
          cell.append(small);
        }
        row.append(cell);
      });
      body.append(row);
    }
  };
  const columns = losses.map((_, l) => l);
  fillTable($('#targets'), columns.filter((l) => !LATER_LOSSES.has(losses[l])));
  fillTable($('#targets-later'), columns.filter((l) => LATER_LOSSES.has(losses[l])));
  targets.free();
  const notes = $('#target-notes');
  notes.replaceChildren(...losses.flatMap((l) => {
    const term = document.createElement('dt');
    term.textContent = LOSS_TITLES[l] ?? l;
    const text = document.createElement('dd');
    text.textContent = LOSS_NOTES[l] ?? '';
    return [term, text];
  }));
  $('#targets-wrap').hidden = false;
  demo.targets = { kept: names[kept], losses, rows: rows.map((r) => names[r]) };
}

function renderKeptChoices(state, demo, trueLabels) {
  const choices = $('#kept-choices');
  const names = state.labelNames;
  const present = trueLabels.map((l) => state.info.labelIndex(l)).filter((i) => i !== undefined);
  choices.replaceChildren(...present.map((label, n) => {
    const wrap = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'kept';
    input.value = String(label);
    input.checked = n === 0;
    input.addEventListener('change', () => renderTargets(state, demo, trueLabels, label));
    wrap.append(input, ` keep “${names[label]}”`);
    return wrap;
  }));
  if (present.length) renderTargets(state, demo, trueLabels, present[0]);
}

async function train(state, demo) {
  const button = $('#train-button');
  const status = $('#train-status');
  button.disabled = true;
  status.textContent = 'downloading the features…';
  const { bytes } = await cachedBytes('lesson/features.safetensors', (got, total) => {
    status.textContent = `downloading the features… ${(got / 1e6).toFixed(1)}${total ? ' of ' + (total / 1e6).toFixed(1) : ''} MB`;
  });
  // A new run starts from scratch; the previous one's tensors are released first.
  state.lessonRuns?.free();
  const engine = await state.startLessonEngine();
  const runs = (state.lessonRuns = engine.startLesson(bytes, 0));
  const losses = runs.losses;
  const series = losses.map((name) => ({ name, colour: LOSS_COLOURS[name] ?? '#333', points: [] }));
  const history = [];
  demo.lesson = { losses, history, seconds: 0, done: false };
  const legend = $('#map-legend');
  const chart = $('#map-chart');
  const started = performance.now();
  const totalEpochs = state.wasm.lessonEpochs();
  const evaluate = async () => {
    const maps = Array.from(await runs.validate());
    const epochs = runs.epochs;
    history.push({ epochs, maps });
    maps.forEach((m, i) => series[i].points.push([epochs, m]));
    drawChart(chart, series, totalEpochs);
    legend.replaceChildren(...series.map((s, i) => {
      const item = document.createElement('li');
      item.style.setProperty('--swatch', s.colour);
      item.textContent = `${LOSS_TITLES[s.name] ?? s.name}: ${maps[i].toFixed(1)} mAP`;
      return item;
    }));
    demo.lesson.seconds = (performance.now() - started) / 1000;
    status.textContent = `${epochs.toFixed(1)} epochs in ${demo.lesson.seconds.toFixed(0)} s on ${engine.name}`;
  };
  await evaluate();
  const steps = Math.max(1, Math.round(runs.trainImages / runs.batchSize / EVALUATIONS_PER_EPOCH));
  while (runs.epochs < totalEpochs - 1e-9) {
    for (let s = 0; s < steps; s++) {
      runs.train(1);
      // Let the page breathe between steps (and WebGPU work reach the GPU).
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await evaluate();
  }
  demo.lesson.done = true;
  status.textContent += ' — done';
  button.disabled = false;
  button.textContent = 'Train again';
}

export function setupLesson(state, demo) {
  document.addEventListener('photo-predicted', (event) => {
    const { trueLabels } = event.detail;
    if (trueLabels) renderKeptChoices(state, demo, trueLabels);
  });
  $('#train-button').addEventListener('click', () => train(state, demo).catch((error) => {
    $('#train-status').textContent = `training stopped: ${error.message ?? error}`;
    $('#train-button').disabled = false;
    if (demo.lesson) demo.lesson.error = String(error.message ?? error);
  }));
}
