// Loss chart on a <canvas>: content, style and TV curves on a log scale.
// Drawn by hand because the studio must work offline (no chart library, no CDN).
"use strict";

class LossChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.series = [
      { key: 1, color: "#2f6fdd" }, // content
      { key: 2, color: "#d9622b" }, // style
      { key: 3, color: "#2f9d62" }, // tv
    ];
    this.reset(0);
    // Redraw on resize so the curves stay sharp at any width and pixel ratio.
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  reset(total) {
    this.points = [];
    this.total = total;
    this.draw();
  }

  add(points, total) {
    this.total = total || this.total;
    for (const p of points) this.points.push(p);
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    if (!this.points.length) {
      g.fillStyle = "#a3a7ae";
      g.font = "12px system-ui, sans-serif";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText("Loss curves appear here while a job runs.", w / 2, h / 2);
      return;
    }
    const pad = { l: 46, r: 10, t: 10, b: 22 };
    const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;

    // Log scale: the three parts differ by orders of magnitude.
    let lo = Infinity, hi = -Infinity;
    for (const p of this.points) {
      for (const s of this.series) {
        const v = p[s.key];
        if (v > 0) { lo = Math.min(lo, Math.log10(v)); hi = Math.max(hi, Math.log10(v)); }
      }
    }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    lo = Math.floor(lo); hi = Math.ceil(hi);
    if (hi - lo < 1) hi = lo + 1;
    const maxX = Math.max(this.total, this.points.length ? this.points[this.points.length - 1][0] : 1, 1);
    const x = (it) => pad.l + (it / maxX) * pw;
    const y = (v) => pad.t + ph - ((Math.log10(v) - lo) / (hi - lo)) * ph;

    g.font = "11px system-ui, sans-serif";
    g.textBaseline = "middle";
    g.fillStyle = "#8a8f98";
    g.strokeStyle = "#e7e4de";
    g.lineWidth = 1;
    const step = Math.max(1, Math.ceil((hi - lo) / 5));
    for (let e = lo; e <= hi; e += step) {
      const yy = Math.round(y(10 ** e)) + 0.5;
      g.beginPath(); g.moveTo(pad.l, yy); g.lineTo(pad.l + pw, yy); g.stroke();
      g.textAlign = "right";
      g.fillText(e === 0 ? "1" : `1e${e}`, pad.l - 6, yy);
    }
    g.textAlign = "center";
    g.textBaseline = "top";
    g.fillText("0", x(0), pad.t + ph + 6);
    g.fillText(String(maxX), x(maxX) - 10, pad.t + ph + 6);
    g.fillText("iteration", pad.l + pw / 2, pad.t + ph + 6);

    g.lineWidth = 1.8;
    g.lineJoin = "round";
    for (const s of this.series) {
      g.strokeStyle = s.color;
      g.beginPath();
      let started = false;
      for (const p of this.points) {
        const v = p[s.key];
        if (!(v > 0)) { started = false; continue; }
        if (started) g.lineTo(x(p[0]), y(v)); else { g.moveTo(x(p[0]), y(v)); started = true; }
      }
      g.stroke();
    }
  }
}

window.LossChart = LossChart;
