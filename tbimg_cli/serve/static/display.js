// What a pane shows: an image's own values (16-bit ones decoded here, since a browser draws every PNG in
// 8 bits), mapped through the display settings (window, gamma, contrast, brightness, a colour map for
// single-channel images) into the canvas's 8-bit RGBA. The values stay, so the readout and the difference
// are in the image's own units, not the screen's.

// Colour maps as control points, interpolated linearly: viridis and magma (matplotlib's, public domain),
// and a blue-white-red diverging map for signed values around the window's middle.
const MAPS = {
  viridis: ["440154", "482878", "3e4a89", "31688e", "26828e", "1f9e89", "35b779", "6ece58", "b5de2b", "fde725"],
  magma: ["000004", "180f3d", "440f76", "721f81", "9e2f7f", "cd4071", "f1605d", "fd9668", "feca8d", "fcfdbf"],
  diverging: ["3b4cc0", "6788ee", "9abbff", "c9d7f0", "f7f7f7", "f2cbb7", "f7a889", "e26952", "b40426"],
};
export const COLOUR_MAPS = ["grey", ...Object.keys(MAPS)];
export const NEUTRAL = { brightness: 0, contrast: 1, gamma: 1, low: null, high: null, cmap: "grey" };

const tables = {}; // colour map -> 256 x RGB

function table(name) {
  if (!tables[name]) {
    const points = MAPS[name].map((hex) => [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)));
    const rgb = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const at = (i / 255) * (points.length - 1);
      const k = Math.min(points.length - 2, Math.floor(at));
      const f = at - k;
      for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(points[k][c] * (1 - f) + points[k + 1][c] * f);
    }
    tables[name] = rgb;
  }
  return tables[name];
}

// A source: { width, height, channels (1, 2, 3 or 4: grey, grey+alpha, RGB, RGBA), bits (8 or 16),
// values (Uint8Array or Uint16Array, interleaved) }.
// A stored image (a Blob, as fetched): a 16-bit PNG decoded here, anything else by the browser.
export async function decode(blob) {
  if (blob.type && blob.type !== "image/png") return bitmapSource(blob); // the server's type, from the bytes
  const head = new Uint8Array(await blob.slice(0, 34).arrayBuffer());
  const png16 = isPng(head) && head[24] === 16 && head[28] === 0; // 16 bits, not interlaced
  if (png16) return decodePng16(new Uint8Array(await blob.arrayBuffer()));
  return bitmapSource(blob);
}

// An 8-bit image is drawn by the browser as it is; its values are read from it only when asked for.
async function bitmapSource(blob) {
  const bitmap = await createImageBitmap(blob);
  return { width: bitmap.width, height: bitmap.height, channels: null, bits: 8, values: null, bitmap };
}

// The values of an 8-bit source, read from its bitmap the first time they are needed (a readout, a
// difference, a window or colour map): a step change that only draws never pays for them.
export function valuesOf(source) {
  if (source.values) return source;
  const canvas = new OffscreenCanvas(source.width, source.height);
  const context = canvas.getContext("2d");
  context.drawImage(source.bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let grey = true;
  let opaque = true;
  for (let i = 0; i < rgba.length && (grey || opaque); i += 4) {
    if (rgba[i] !== rgba[i + 1] || rgba[i] !== rgba[i + 2]) grey = false;
    if (rgba[i + 3] !== 255) opaque = false;
  }
  const channels = grey ? (opaque ? 1 : 2) : opaque ? 3 : 4;
  const values = new Uint8Array((rgba.length / 4) * channels);
  const pick = { 1: [0], 2: [0, 3], 3: [0, 1, 2], 4: [0, 1, 2, 3] }[channels];
  for (let p = 0, o = 0; p < rgba.length; p += 4) for (const c of pick) values[o++] = rgba[p + c];
  source.channels = channels;
  source.values = values;
  return source;
}

// True when the display settings change nothing: an 8-bit source is then drawn straight from its bitmap.
export function unchanged(source, display) {
  const d = display;
  return source.bits === 8 && d.brightness === 0 && d.contrast === 1 && d.gamma === 1 && d.cmap === "grey" && d.low === null && d.high === null;
}

function isPng(bytes) {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  return bytes.length > 33 && signature.every((b, i) => bytes[i] === b);
}

// A 16-bit PNG (grey, grey+alpha, RGB, RGBA; every filter type): the IDAT chunks inflated by the browser's
// own DecompressionStream, the scanlines unfiltered here.
async function decodePng16(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const channels = { 0: 1, 4: 2, 2: 3, 6: 4 }[bytes[25]];
  if (!channels) throw new Error(`PNG colour type ${bytes[25]} is not read in 16 bits here`);
  const parts = [];
  for (let at = 8; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    const kind = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (kind === "IDAT") parts.push(bytes.subarray(at + 8, at + 8 + length));
    if (kind === "IEND") break;
    at += 12 + length;
  }
  const inflated = new Uint8Array(await new Response(new Blob(parts).stream().pipeThrough(new DecompressionStream("deflate"))).arrayBuffer());
  const step = channels * 2; // bytes per pixel
  const row = width * step;
  const raw = new Uint8Array(row * height);
  for (let y = 0; y < height; y++) {
    const filter = inflated[y * (row + 1)];
    const line = inflated.subarray(y * (row + 1) + 1, (y + 1) * (row + 1));
    const out = raw.subarray(y * row, (y + 1) * row);
    const up = y ? raw.subarray((y - 1) * row, y * row) : new Uint8Array(row);
    for (let i = 0; i < row; i++) {
      const a = i >= step ? out[i - step] : 0;
      const b = up[i];
      const c = i >= step ? up[i - step] : 0;
      let v = line[i];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[i] = v;
    }
  }
  const values = new Uint16Array(width * height * channels);
  for (let i = 0; i < values.length; i++) values[i] = (raw[i * 2] << 8) | raw[i * 2 + 1]; // big-endian samples
  return { width, height, channels, bits: 16, values };
}

// The window a "auto" asks for: the 1st and 99th percentiles of the colour values (alpha left out).
export function autoWindow(source) {
  valuesOf(source);
  const colours = source.channels === 2 || source.channels === 4 ? source.channels - 1 : source.channels;
  const counts = new Uint32Array(source.bits === 16 ? 65536 : 256);
  let n = 0;
  for (let i = 0; i < source.values.length; i++) if (i % source.channels < colours) counts[source.values[i]]++, n++;
  const at = (share) => {
    let seen = 0;
    for (let v = 0; v < counts.length; v++) if ((seen += counts[v]) >= share * n) return v;
    return counts.length - 1;
  };
  const low = at(0.01);
  return { low, high: Math.max(low + 1, at(0.99)) };
}

export function maxValue(source) {
  return source.bits === 16 ? 65535 : 255;
}

// value -> displayed 0..255, for every value the source can hold: window, gamma, contrast, brightness.
function curve(source, display) {
  const top = maxValue(source);
  const low = display.low ?? 0;
  const high = display.high ?? top;
  const span = Math.max(1e-9, high - low);
  const lut = new Uint8ClampedArray(top + 1);
  for (let v = 0; v <= top; v++) {
    let t = Math.min(1, Math.max(0, (v - low) / span));
    if (display.gamma !== 1) t = t ** (1 / display.gamma);
    t = (t - 0.5) * display.contrast + 0.5 + display.brightness;
    lut[v] = Math.round(Math.min(1, Math.max(0, t)) * 255);
  }
  return lut;
}

// The source drawn for the screen. A colour map applies to single-channel images only.
export function render(source, display) {
  valuesOf(source);
  const lut = curve(source, display);
  const out = new ImageData(source.width, source.height);
  const d = out.data;
  const v = source.values;
  const ch = source.channels;
  const colours = display.cmap !== "grey" && ch <= 2 ? table(display.cmap) : null;
  const alphaScale = source.bits === 16 ? 1 / 257 : 1;
  for (let p = 0, i = 0; p < d.length; p += 4, i += ch) {
    if (ch <= 2) {
      const g = lut[v[i]];
      if (colours) (d[p] = colours[g * 3]), (d[p + 1] = colours[g * 3 + 1]), (d[p + 2] = colours[g * 3 + 2]);
      else d[p] = d[p + 1] = d[p + 2] = g;
      d[p + 3] = ch === 2 ? v[i + 1] * alphaScale : 255;
    } else {
      d[p] = lut[v[i]];
      d[p + 1] = lut[v[i + 1]];
      d[p + 2] = lut[v[i + 2]];
      d[p + 3] = ch === 4 ? v[i + 3] * alphaScale : 255;
    }
  }
  return out;
}

// |a - b| per colour channel over the overlap, amplified so that the largest difference is white; the
// largest difference in the images' own units comes back with it.
export function difference(a, b) {
  valuesOf(a);
  valuesOf(b);
  const width = Math.min(a.width, b.width);
  const height = Math.min(a.height, b.height);
  const colour = (s, x, y, c) => {
    const base = (y * s.width + x) * s.channels;
    return s.channels <= 2 ? s.values[base] : s.values[base + c];
  };
  const diff = new Float64Array(width * height * 3);
  let max = 0;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) {
        const value = Math.abs(colour(a, x, y, c) - colour(b, x, y, c));
        diff[(y * width + x) * 3 + c] = value;
        if (value > max) max = value;
      }
  const gain = max ? 255 / max : 1;
  const image = new ImageData(width, height);
  for (let i = 0, p = 0; i < diff.length; i += 3, p += 4) {
    image.data[p] = diff[i] * gain;
    image.data[p + 1] = diff[i + 1] * gain;
    image.data[p + 2] = diff[i + 2] * gain;
    image.data[p + 3] = 255;
  }
  return { image, max, gain };
}

// The values of one pixel, as the image holds them: "12" for grey, "12,40,255" for colour.
export function valuesAt(source, x, y) {
  valuesOf(source);
  if (x < 0 || y < 0 || x >= source.width || y >= source.height) return null;
  const base = (y * source.width + x) * source.channels;
  return [...source.values.subarray(base, base + source.channels)].join(",");
}
