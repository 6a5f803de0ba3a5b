// The lesson's line chart: validation mAP against epochs, one line per loss.

export const LOSS_COLOURS = {
  bce: '#1a7f37', an: '#b42318', epr: '#dc8a00', role: '#2f6fde', em: '#0f8b8d', gr: '#7a3fb0',
};

/** `series`: `[{ name, colour, points: [[epoch, mAP], …] }]`. */
export function drawChart(canvas, series, maxEpochs) {
  const context = canvas.getContext('2d');
  const { width, height } = canvas;
  const left = 44, right = 12, top = 12, bottom = 38;
  const all = series.flatMap((s) => s.points.map(([, y]) => y));
  const yMin = Math.max(0, Math.floor((Math.min(...all, 100) - 2) / 5) * 5);
  const yMax = Math.min(100, Math.ceil((Math.max(...all, 0) + 2) / 5) * 5);
  const xMax = Math.max(maxEpochs, ...series.flatMap((s) => s.points.map(([x]) => x)));
  const px = (x) => left + (x / xMax) * (width - left - right);
  const py = (y) => top + (1 - (y - yMin) / Math.max(yMax - yMin, 1)) * (height - top - bottom);
  context.clearRect(0, 0, width, height);
  context.font = '12px system-ui, sans-serif';
  context.fillStyle = '#667085';
  context.strokeStyle = '#e4e7ec';
  for (let y = yMin; y <= yMax; y += 5) {
    context.beginPath(); context.moveTo(left, py(y)); context.lineTo(width - right, py(y)); context.stroke();
    context.fillText(String(y), 8, py(y) + 4);
  }
  // Tick numbers centred under their epochs, and the axis's name on a line of its own below
  // them, so that no label runs into the next.
  context.textAlign = 'center';
  for (let x = 0; x <= xMax; x += Math.max(1, Math.round(xMax / 10))) {
    context.fillText(String(x), px(x), height - 20);
  }
  context.fillText('epochs', px(xMax / 2), height - 4);
  context.textAlign = 'start';
  for (const { colour, points } of series) {
    context.strokeStyle = colour;
    context.lineWidth = 2;
    context.beginPath();
    points.forEach(([x, y], i) => (i ? context.lineTo(px(x), py(y)) : context.moveTo(px(x), py(y))));
    context.stroke();
  }
}
