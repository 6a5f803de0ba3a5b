// Drawing a label's attention map over the photo: the map (a few cells per side, one per
// feature-map position) is coloured on a tiny canvas and stretched over the photo with the
// browser's bilinear smoothing, which is the upsampling.

/** An inferno-like colour ramp: dark purple → red → yellow for 0 → 1. */
function colour(t) {
  const stops = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
  const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}

/** A `width`×`height` canvas of the map, scaled so that its largest cell is the top colour. */
function mapCanvas(map, width, height) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  const pixels = context.createImageData(width, height);
  const max = Math.max(...map) || 1;
  map.forEach((value, i) => {
    const [r, g, b] = colour(value / max);
    pixels.data.set([r, g, b, 255], i * 4);
  });
  context.putImageData(pixels, 0, 0);
  return canvas;
}

/** Fits `canvas` to `bitmap` at most `maxWidth` wide, keeping its aspect ratio. */
export function sizeCanvas(canvas, bitmap, maxWidth) {
  const scale = Math.min(1, maxWidth / bitmap.width);
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
}

/**
 * Draws the photo, then `map` (row-major `height`×`width`, or empty for none) over it at
 * `opacity`.
 */
export function drawOverlay(canvas, bitmap, map, width, height, opacity) {
  const context = canvas.getContext('2d');
  context.globalAlpha = 1;
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  if (!map || map.length !== width * height || opacity <= 0) return;
  context.globalAlpha = opacity;
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  context.drawImage(mapCanvas(map, width, height), 0, 0, canvas.width, canvas.height);
  context.globalAlpha = 1;
}
