// "Draw a digit": the linear model's arithmetic on the learner's own drawing, in the page itself.
// Reads the run's weights and bias from the JSON in #draw-data (pipeline/report/draw_digit.py); needs no
// server and nothing from the network. For tests, window.drawDigit: setPixels(784 numbers),
// getState(), clear(), setBias(b).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("draw-data").textContent);
  const SIDE = 28, INK = 280, BOX = 20;  // model pixels per side; drawing pixels per side; MNIST's digit box
  const weights = Float64Array.from(data.weights);
  const limit = data.limit;  // colour scale of the weights and of weight x pixel (beyond it: the darkest colour)
  const ink = document.getElementById("draw-canvas");
  const pen = ink.getContext("2d", { willReadFrequently: true });
  const el = (id) => document.getElementById(id);
  let pixels = new Float64Array(SIDE * SIDE);
  let bias = data.bias;
  let last = null;

  // The drawing (INK x INK, coverage in the alpha channel) as model pixels in 0..1.
  function inkLevels() {
    const rgba = pen.getImageData(0, 0, INK, INK).data;
    const levels = new Float64Array(INK * INK);
    for (let i = 0; i < levels.length; i++) levels[i] = rgba[4 * i + 3] / 255;
    return levels;
  }

  // The mean ink over the drawing rectangle [x0, x1) x [y0, y1) (drawing pixels, fractional): each
  // drawing pixel weighted by how much of it the rectangle covers; outside the drawing counts as blank.
  function meanInk(levels, x0, y0, x1, y1) {
    let total = 0;
    for (let y = Math.max(0, Math.floor(y0)); y < Math.min(INK, Math.ceil(y1)); y++) {
      const coverY = Math.min(y + 1, y1) - Math.max(y, y0);
      for (let x = Math.max(0, Math.floor(x0)); x < Math.min(INK, Math.ceil(x1)); x++) {
        total += coverY * (Math.min(x + 1, x1) - Math.max(x, x0)) * levels[y * INK + x];
      }
    }
    return total / ((x1 - x0) * (y1 - y0));
  }

  // MNIST's own preprocessing: the ink's bounding box scaled to fit 20 x 20 (aspect kept, grey
  // levels from the averaging), then moved so its centre of mass sits at the centre of 28 x 28.
  function mnistLike(levels) {
    let left = INK, top = INK, right = -1, bottom = -1;
    for (let y = 0; y < INK; y++) {
      for (let x = 0; x < INK; x++) {
        if (levels[y * INK + x] > 0) {
          left = Math.min(left, x); right = Math.max(right, x);
          top = Math.min(top, y); bottom = Math.max(bottom, y);
        }
      }
    }
    const out = new Float64Array(SIDE * SIDE);
    if (right < 0) return out;  // nothing drawn
    const size = Math.max(right - left + 1, bottom - top + 1);
    const per = size / BOX;  // drawing pixels per model pixel
    const offsetX = (SIDE - (right - left + 1) / per) / 2, offsetY = (SIDE - (bottom - top + 1) / per) / 2;
    const boxed = new Float64Array(SIDE * SIDE);
    let mass = 0, massX = 0, massY = 0;
    for (let ty = 0; ty < SIDE; ty++) {
      for (let tx = 0; tx < SIDE; tx++) {
        const x0 = left + (tx - offsetX) * per, y0 = top + (ty - offsetY) * per;
        const v = Math.min(1, meanInk(levels, x0, y0, x0 + per, y0 + per));
        boxed[ty * SIDE + tx] = v;
        mass += v; massX += v * (tx + 0.5); massY += v * (ty + 0.5);
      }
    }
    const dx = Math.round(SIDE / 2 - massX / mass), dy = Math.round(SIDE / 2 - massY / mass);
    for (let ty = 0; ty < SIDE; ty++) {
      for (let tx = 0; tx < SIDE; tx++) {
        const sx = tx - dx, sy = ty - dy;
        if (sx >= 0 && sy >= 0 && sx < SIDE && sy < SIDE) out[ty * SIDE + tx] = boxed[sy * SIDE + sx];
      }
    }
    return out;
  }

  // The drawing as it is, each model pixel the mean of its 10 x 10 drawing pixels.
  function asDrawn(levels) {
    const out = new Float64Array(SIDE * SIDE), per = INK / SIDE;
    for (let ty = 0; ty < SIDE; ty++) {
      for (let tx = 0; tx < SIDE; tx++) out[ty * SIDE + tx] = meanInk(levels, tx * per, ty * per, (tx + 1) * per, (ty + 1) * per);
    }
    return out;
  }

  function paint(canvas, colour) {
    const ctx = canvas.getContext("2d"), image = ctx.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const [r, g, b] = colour(i);
      image.data.set([r, g, b, 255], 4 * i);
    }
    ctx.putImageData(image, 0, 0);
  }

  const diverging = (value) => data.colormap[Math.max(0, Math.min(255, Math.round((value / limit + 1) / 2 * 255)))];
  const grey = (value) => { const g = Math.round(255 * (1 - value)); return [g, g, g]; };

  function state() {
    const products = Array.from(pixels, (p, i) => p * weights[i]);
    const sum = products.reduce((a, b) => a + b, 0);
    const logit = sum + bias;
    const probability = 1 / (1 + Math.exp(-logit));  // of digits[0]
    const verdict = logit > 0 ? data.digits[0] : data.digits[1];
    return { pixels: Array.from(pixels), products, sum, bias, logit, probability, verdict,
             confidence: logit > 0 ? probability : 1 - probability };
  }

  function show() {
    const s = state();
    paint(el("draw-pixels"), (i) => grey(pixels[i]));
    paint(el("draw-products"), (i) => diverging(s.products[i]));
    el("draw-sum").textContent = s.sum.toFixed(3);
    el("draw-bias-shown").textContent = s.bias.toFixed(3);
    el("draw-logit").textContent = s.logit.toFixed(3);
    el("draw-verdict").textContent = `${s.verdict} (probability ${(100 * s.confidence).toFixed(1)}%)`;
    el("draw-bias-value").textContent = s.bias.toFixed(2);
  }

  function fromInk() {
    const levels = inkLevels();
    pixels = el("draw-centre").checked ? mnistLike(levels) : asDrawn(levels);
    show();
  }

  function at(event) {
    const box = ink.getBoundingClientRect();
    return [(event.clientX - box.left) * INK / box.width, (event.clientY - box.top) * INK / box.height];
  }

  function stroke(from, to) {  // a line of ink with round ends; a dot where it starts
    pen.lineWidth = INK / 14;
    pen.lineCap = pen.lineJoin = "round";
    pen.strokeStyle = pen.fillStyle = "black";
    pen.beginPath();
    pen.arc(...from, pen.lineWidth / 2, 0, 2 * Math.PI);
    pen.fill();
    pen.beginPath();
    pen.moveTo(...from);
    pen.lineTo(...to);
    pen.stroke();
  }

  // Pointer events: the mouse, a finger and a pen alike (touch-action: none keeps the page still).
  ink.addEventListener("pointerdown", (event) => {
    ink.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(last, last);
    fromInk();
  });
  ink.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const next = at(event);
    stroke(last, next);
    last = next;
    fromInk();
  });
  for (const end of ["pointerup", "pointercancel"]) ink.addEventListener(end, () => { last = null; });

  function clear() {
    pen.clearRect(0, 0, INK, INK);
    pixels = new Float64Array(SIDE * SIDE);
    show();
  }

  function setBias(value) {
    bias = Number(value);
    el("draw-bias").value = String(bias);
    show();
  }

  el("draw-clear").addEventListener("click", clear);
  el("draw-centre").addEventListener("change", fromInk);
  el("draw-bias").addEventListener("input", (event) => { bias = Number(event.target.value); show(); });
  el("draw-bias-reset").addEventListener("click", () => setBias(data.bias));

  paint(el("draw-weights"), (i) => diverging(weights[i]));
  setBias(data.bias);

  window.drawDigit = {
    setPixels(values) {  // the model's 784 inputs directly (row by row, 0..1), the drawing cleared
      if (values.length !== SIDE * SIDE) throw new Error(`setPixels: expected ${SIDE * SIDE} values, got ${values.length}`);
      pen.clearRect(0, 0, INK, INK);
      pixels = Float64Array.from(values);
      show();
    },
    getState: state,
    clear,
    setBias,
  };
})();
