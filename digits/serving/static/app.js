// The page of digits.serve: write on #pad (Pointer Events), read after each stroke, show the reading: the
// whole number in #digit, each digit's box over the pad (#overlay), and for the digit tapped in #digits
// (or the only one) its probabilities and the 28x28 image the model saw.
//
// People write numbers fast, and then their digits' ink touches, which the image alone cannot undo well
// (docs/reading.md). The pad knows more than the image: which strokes were written apart. Strokes are one
// digit when their columns overlap as the reader's pieces of one digit do (digits.reading.segment.MERGE_OVERLAP: a 4's
// two strokes, a 5's bar); the pad sends its digits redrawn apart, and maps the boxes read back onto the pad.
'use strict';
const pad = document.getElementById('pad');
const ctx = pad.getContext('2d');
const overlay = document.getElementById('overlay').getContext('2d');
const READ_DELAY_MS = 250;  // after the pen lifts: a second stroke started within it cancels the read
let drawing = null;         // the pointer id of the stroke under way
let readTimer = null;
let readSeq = 0;            // only the latest request's answer is shown
let strokes = [];           // what was written: {width, points: [[x, y], ...]} in the pad's pixels, in order
const MERGE_OVERLAP = 0.5;  // digits.reading.segment.MERGE_OVERLAP (tests/test_browser.py checks they agree)
const SPACE = 0.25;         // of the tallest digit's height: the least paper between digits sent

function clearPad() {
  strokes = [];
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();  // the canvas is scaled by CSS: map to its 280x280 pixels
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function startStroke(event) {
  event.preventDefault();
  clearTimeout(readTimer);
  drawing = event.pointerId;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = padPoint(event);
  ctx.lineWidth = Number(document.getElementById('pen').value);
  ctx.lineCap = ctx.lineJoin = 'round';
  ctx.strokeStyle = '#000';
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x + 0.01, y);  // a dot, if the pen lifts without moving
  ctx.stroke();
  strokes.push({width: ctx.lineWidth, points: [[x, y]]});
}

function continueStroke(event) {
  if (event.pointerId !== drawing) return;
  const [x, y] = padPoint(event);
  ctx.lineTo(x, y);
  ctx.stroke();
  strokes[strokes.length - 1].points.push([x, y]);
}

function endStroke(event) {
  if (event.pointerId !== drawing) return;
  drawing = null;
  readTimer = setTimeout(() => read(...padImage()), READ_DELAY_MS);
}

function padImage() {
  // What was written, its digits laid out apart (layOut): [the image as a PNG file, a function from a box
  // read in it to the same box on the pad].
  const digits = layOut(digitsWritten(strokes));
  const page = document.createElement('canvas');
  page.width = Math.max(pad.width, Math.ceil(Math.max(0, ...digits.map(d => d.x1 + d.shift))) + 20);
  page.height = pad.height;
  const pen = page.getContext('2d');
  pen.fillStyle = '#fff';
  pen.fillRect(0, 0, page.width, page.height);
  for (const digit of digits) drawStrokes(pen, digit);
  // toDataURL, not toBlob: Chromium encodes toBlob in idle time, which delayed the reading by a second.
  const bytes = atob(page.toDataURL('image/png').split(',')[1]);
  return [new Blob([Uint8Array.from(bytes, c => c.charCodeAt(0))], {type: 'image/png'}), box => onPad(box, digits)];
}

function digitsWritten(written) {
  // The strokes grouped into digits: a stroke joins the first digit whose columns overlap its own by
  // MERGE_OVERLAP of the narrower of the two. Each digit: {x0, x1, y0, y1, strokes}, its box with the pen.
  const digits = [];
  for (const stroke of written) {
    const xs = stroke.points.map(p => p[0]), ys = stroke.points.map(p => p[1]), half = stroke.width / 2;
    const [x0, x1] = [Math.min(...xs) - half, Math.max(...xs) + half];
    const overlaps = d => Math.min(x1, d.x1) - Math.max(x0, d.x0) >= MERGE_OVERLAP * Math.min(x1 - x0, d.x1 - d.x0);
    let digit = digits.find(overlaps);
    if (!digit) digits.push(digit = {x0, x1, y0: Infinity, y1: -Infinity, strokes: []});
    Object.assign(digit, {x0: Math.min(digit.x0, x0), x1: Math.max(digit.x1, x1),
                          y0: Math.min(digit.y0, Math.min(...ys) - half), y1: Math.max(digit.y1, Math.max(...ys) + half)});
    digit.strokes.push(stroke);
  }
  return digits;
}

function layOut(digits) {
  // Left to right, each digit's shift: a digit whose columns overlap those before it (written into them, its
  // ink often touching) moves right to leave SPACE x the tallest digit; the ones after it move with it. Gaps
  // as written stay: the reader may still join a piece to its neighbour there (a 5's bar written apart).
  const space = SPACE * Math.max(0, ...digits.map(d => d.y1 - d.y0));
  const ordered = [...digits].sort((a, b) => a.x0 - b.x0);
  let shift = 0, end = -Infinity;
  for (const digit of ordered) {
    if (digit.x0 + shift < end) shift = end + space - digit.x0;
    digit.shift = shift;
    end = Math.max(end, digit.x1 + shift);
  }
  return ordered;
}

function drawStrokes(pen, digit) {
  pen.strokeStyle = '#000';
  pen.lineCap = pen.lineJoin = 'round';
  for (const {width, points: [[x, y], ...rest]} of digit.strokes) {
    pen.lineWidth = width;
    pen.beginPath();
    pen.moveTo(x + digit.shift, y);
    pen.lineTo(x + digit.shift + 0.01, y);
    for (const [px, py] of rest) pen.lineTo(px + digit.shift, py);
    pen.stroke();
  }
}

function onPad(box, digits) {
  // A box [x0, y0, x1, y1] read in the image padImage sent, on the pad: moved back by its digit's shift.
  const middle = (box[0] + box[2]) / 2;
  const digit = digits.find(d => middle >= d.x0 + d.shift && middle <= d.x1 + d.shift);
  const shift = digit ? digit.shift : 0;
  return [box[0] - shift, box[1], box[2] - shift, box[3]];
}

async function read(imageFile, toPad = box => box) {
  const seq = ++readSeq;
  showError('');
  try {
    const response = await fetch('/api/predict', {method: 'POST', body: imageFile});
    const answer = await response.json();
    if (seq !== readSeq) return;
    if (!response.ok) throw new Error(answer.error || response.statusText);
    showReading(answer, toPad);
  } catch (error) {
    if (seq === readSeq) showError(error.message);
  }
}

function percent(p) { return (100 * p).toFixed(1) + '%'; }

function showReading(answer, toPad) {
  // A mark not read as a digit (digit null) shows as '?', in its own colour.
  document.getElementById('digit').textContent = answer.text;
  drawBoxes(answer.digits.map(d => ({...d, box: toPad(d.box)})));
  const chips = document.getElementById('digits');
  chips.replaceChildren(...answer.digits.map((d, i) => {
    const chip = document.createElement('button');
    chip.type = 'button';
    chip.className = d.digit === null ? 'chip refused' : 'chip';
    chip.textContent = `${d.digit === null ? '?' : d.digit} ${percent(d.probability)}`;
    chip.addEventListener('click', () => showDigit(answer.digits, i));
    return chip;
  }));
  showDigit(answer.digits, 0);
}

function drawBoxes(digits) {
  const canvas = overlay.canvas;
  overlay.clearRect(0, 0, canvas.width, canvas.height);
  const scale = canvas.width / pad.width;  // boxes are in the pad image's pixels
  overlay.lineWidth = 2;
  overlay.font = '14px system-ui, sans-serif';
  for (const d of digits) {
    const [x0, y0, x1, y1] = d.box.map(v => v * scale);
    overlay.strokeStyle = overlay.fillStyle = d.digit === null ? '#c62828' : '#2a7ae2';
    overlay.strokeRect(x0 - 3, y0 - 3, x1 - x0 + 6, y1 - y0 + 6);
    overlay.fillText(`${d.digit === null ? '?' : d.digit} ${percent(d.probability)}`, x0, Math.max(14, y0 - 6));
  }
}

function showDigit(digits, i) {
  const d = digits[i];
  document.querySelectorAll('#digits .chip').forEach((chip, k) => chip.classList.toggle('selected', k === i));
  document.getElementById('probability').textContent =
      (digits.length > 1 ? `digit ${i + 1} of ${digits.length}: ` : '') + percent(d.probability);
  document.getElementById('candidates').textContent =
      'next ' + d.top3.slice(1).map(t => `${t.digit} (${percent(t.probability)})`).join(', ');
  document.getElementById('seen').src = d.image;
  document.getElementById('seen-figure').hidden = false;
  const bars = document.getElementById('bars');
  bars.replaceChildren(...d.probabilities.map((p, k) => {
    const bar = document.createElement('div');
    bar.className = k === d.digit ? 'bar top' : 'bar';
    bar.style.height = Math.max(1, 100 * p) + '%';
    bar.title = `${k}: ${percent(p)}`;
    const label = document.createElement('span');
    label.textContent = String(k);
    bar.appendChild(label);
    return bar;
  }));
}

function showError(text) { document.getElementById('error').textContent = text; }

function resetReading() {
  readSeq++;
  clearTimeout(readTimer);
  document.getElementById('digit').textContent = '–';  // nothing read yet ('?' is a refused mark)
  document.getElementById('probability').textContent = 'Write a digit or a number';
  document.getElementById('candidates').textContent = '';
  document.getElementById('digits').replaceChildren();
  document.getElementById('seen-figure').hidden = true;  // no broken-image icon before a reading
  document.getElementById('seen').removeAttribute('src');
  document.getElementById('bars').replaceChildren();
  overlay.clearRect(0, 0, overlay.canvas.width, overlay.canvas.height);
  showError('');
}

pad.addEventListener('pointerdown', startStroke);
pad.addEventListener('pointermove', continueStroke);
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);
document.getElementById('clear').addEventListener('click', () => { clearPad(); resetReading(); });
document.getElementById('file').addEventListener('change', event => {
  if (event.target.files.length) read(event.target.files[0]);
});
// The whole page takes dropped files (a drop on the pad bubbles up to it).
document.body.addEventListener('dragover', event => { event.preventDefault(); pad.classList.add('dragover'); });
document.body.addEventListener('dragleave', () => pad.classList.remove('dragover'));
document.body.addEventListener('drop', event => {
  event.preventDefault();
  pad.classList.remove('dragover');
  if (event.dataTransfer.files.length) read(event.dataTransfer.files[0]);
});
clearPad();
