// The time chart of the chosen dyad (uPlot) and the cards' sparklines (SVG).
//
// Both draw the curves the API gives (/api/dyads/{dyad}/curve), as they come: the core
// samples them, a jump where each change happened and the decay between, the same curves
// as the backtest's report. Nothing here computes an index, so the page cannot drift from
// the engine: a retraction drops the curve where it was issued, not at the event it withdrew.
//
// Levels follow E above the dyad's own normal (the curve's `escalation_baseline`, a step: the
// engine judges a dyad again at each of its events). So the thresholds are drawn at normal +
// threshold, and step with it; for a dyad with no normal of its own (0) they are flat.

import { svg } from './dom.js';

/** The colours come from style.css (its custom properties), so the canvas matches the page. */
function readColors() {
  const style = getComputedStyle(document.documentElement);
  const css = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    escalation: css('--escalation', '#ff7b72'),
    deEscalation: css('--de-escalation', '#58a6ff'),
    normal: css('--normal', '#3fb950'),
    watch: css('--watch', '#d29922'),
    warning: css('--warning', '#f0883e'),
    critical: css('--critical', '#f85149'),
    background: css('--bg', '#0d1117'),
    axis: css('--muted', '#8b949e'),
    grid: 'rgba(240, 246, 252, 0.07)',
  };
}

export const COLORS = readColors();
/** Alerts about cooperation: drawn in D's colour, on D's curve. */
const COOPERATIVE_REASONS = new Set(['cooperation-overtakes', 'crisis-resolved']);

/** [level, threshold] for each level above the lowest, in the API's order (lowest first). */
function thresholds(config) {
  return config.levels.slice(1).map((level) => [level, config[level]]);
}

/**
 * A curve of the API as uPlot takes it: [times, E, D, normal]. A curve without a normal (from
 * a worker older than the field) is judged against 0.
 */
export function plotted(curve) {
  if (!curve) return [[], [], [], []];
  const normal = curve.escalation_baseline ?? curve.times.map(() => 0);
  return [curve.times, curve.escalation, curve.de_escalation, normal];
}

/** The highest value of a series, 0 for none (without spreading thousands of arguments). */
function highest(values) {
  return values.reduce((most, value) => (value > most ? value : most), 0);
}

/**
 * Where the normal steps: [x, value] from the left edge, one at each change and the value
 * held until the next (as the engine holds it between events). `xs` are in data units.
 */
function normalSteps(xs, normal) {
  const steps = [[Number.NEGATIVE_INFINITY, normal[0] ?? 0]];
  for (let i = 1; i < xs.length; i++) {
    if (normal[i] !== normal[i - 1]) steps.push([xs[i], normal[i]]);
  }
  return steps;
}

/**
 * The corners of the normal's step line from `left` to `right`: [x, value], x from the steps'
 * times by `toX`. A threshold's line is the same corners, its value added.
 */
function stepCorners(steps, toX, left, right) {
  const corners = [];
  steps.forEach(([at, value], i) => {
    const x = Math.min(Math.max(toX(at), left), right);
    if (i > 0) corners.push([x, steps[i - 1][1]]);
    corners.push([x, value]);
  });
  corners.push([right, steps.at(-1)[1]]);
  return corners;
}

/**
 * The dyad's normal, and above it the threshold bands and clearing lines, drawn on uPlot's
 * canvas under the curves: each at normal + threshold, stepping with the normal.
 */
function thresholdBands(getConfig) {
  return (u) => {
    const config = getConfig();
    if (!config) return;
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const [xs = [], , , normal = []] = u.data;
    const steps = normalSteps(xs, normal);
    // Hidden from the legend, the normal line goes; the thresholds stay where they are.
    const judged = highest(normal) > 0;
    const drawNormal = judged && u.series[3]?.show !== false;
    const raised = thresholds(config);
    const bands = raised.map(([level, from], i) => [level, from, raised[i + 1]?.[1] ?? Infinity]);
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    const y = (value) => u.valToPos(value, 'y', true);
    const corners = stepCorners(steps, (value) => u.valToPos(value, 'x', true), left, left + width);
    /** Adds the normal plus `offset` to the current path, left to right or back. */
    const follow = (offset, backwards = false) => {
      for (const [x, value] of backwards ? [...corners].reverse() : corners) ctx.lineTo(x, y(value + offset));
    };
    const trace = (offset) => {
      ctx.beginPath();
      follow(offset);
      ctx.stroke();
    };
    // The normal where the label goes: at the left edge (after zooming in, maybe a later step).
    const shownFrom = u.scales.x.min ?? Number.NEGATIVE_INFINITY;
    const normalAtLeft = steps.findLast(([at]) => at <= shownFrom)?.[1] ?? steps[0][1];
    const dpr = devicePixelRatio || 1;
    for (const [level, from, to] of bands) {
      ctx.fillStyle = withAlpha(COLORS[level], 0.09);
      ctx.beginPath();
      follow(from);
      if (Number.isFinite(to)) follow(to, true);
      else {
        ctx.lineTo(left + width, top);
        ctx.lineTo(left, top);
      }
      ctx.closePath();
      ctx.fill();
      // The threshold itself.
      ctx.strokeStyle = withAlpha(COLORS[level], 0.6);
      ctx.lineWidth = dpr;
      ctx.setLineDash([]);
      trace(from);
      // Where the level is left again: threshold × clearing ratio (hysteresis).
      ctx.strokeStyle = withAlpha(COLORS[level], 0.45);
      ctx.setLineDash([2 * dpr, 4 * dpr]);
      trace(from * config.clearing_ratio);
      ctx.setLineDash([]);
      ctx.fillStyle = withAlpha(COLORS[level], 0.85);
      ctx.font = `${11 * dpr}px system-ui, sans-serif`;
      ctx.textBaseline = 'bottom';
      ctx.textAlign = 'left'; // uPlot leaves its last axis' alignment on the context
      const yFrom = y(normalAtLeft + from);
      const label = judged ? `${level} ≥ normal + ${from}` : `${level} ≥ ${from}`;
      if (yFrom > top + 12 * dpr) ctx.fillText(label, left + 6 * dpr, yFrom - 2 * dpr);
    }
    // The normal itself, only for a dyad that has one: a quiet dyad's chart is as it was.
    if (drawNormal) {
      ctx.strokeStyle = withAlpha(COLORS.normal, 0.7);
      ctx.lineWidth = 1.5 * dpr;
      trace(0);
    }
    ctx.restore();
  };
}

function alertMarkers(getAlerts) {
  return (u) => {
    const alerts = getAlerts();
    if (!alerts.length) return;
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const alert of alerts) {
      const cooperative = COOPERATIVE_REASONS.has(alert.reason_code);
      const x = u.valToPos(Date.parse(alert.event_time) / 1000, 'x', true);
      if (x < left - 1 || x > left + width + 1) continue;
      const color = cooperative ? COLORS.deEscalation : COLORS[alert.level];
      ctx.strokeStyle = withAlpha(color, 0.7);
      ctx.lineWidth = dpr;
      ctx.setLineDash([4 * dpr, 3 * dpr]);
      line(ctx, x, top, x, top + height);
      ctx.setLineDash([]);
      // A dot on the index the alert is about: levels follow E; cooperation's alerts are D's.
      const value = cooperative ? alert.de_escalation_index : alert.escalation_index;
      const yValue = u.valToPos(value, 'y', true);
      ctx.fillStyle = color;
      ctx.strokeStyle = COLORS.background;
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath();
      ctx.arc(x, yValue, 5 * dpr, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      // A flag at the top with the new level.
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x + 8 * dpr, top + 5 * dpr);
      ctx.lineTo(x, top + 10 * dpr);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * x-axis labels in UTC, 24-hour: "Jan 16" at midnights and for day steps, else "12:00";
 * the first label has the year under it.
 */
function timeLabels(_, splits, __, ___, increment) {
  return splits.map((ts, i) => {
    const d = new Date(ts * 1000);
    const day = `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}${i === 0 ? `\n${d.getUTCFullYear()}` : ''}`;
    const midnight = d.getUTCHours() === 0 && d.getUTCMinutes() === 0;
    if (increment >= 86400 || midnight) return day;
    return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  });
}

function line(ctx, x0, y0, x1, y1 = y0) {
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

function withAlpha(hex, alpha) {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/**
 * The chosen dyad's chart. `getConfig` and `getAlerts` are read at each draw, so a redraw
 * picks up new alerts without rebuilding the chart.
 */
export class DyadChart {
  constructor(container, getConfig, getAlerts) {
    this.container = container;
    this.getConfig = getConfig;
    this.getAlerts = getAlerts;
    this.plot = null;
  }

  create(data) {
    const uPlot = globalThis.uPlot;
    const axis = {
      stroke: COLORS.axis,
      grid: { stroke: COLORS.grid, width: 1 },
      ticks: { stroke: COLORS.grid, width: 1 },
      font: '12px system-ui, sans-serif',
    };
    const value = (_, v) => (v === null || v === undefined ? '–' : v.toFixed(2));
    const options = {
      width: Math.max(this.container.clientWidth, 300),
      height: 300,
      // Event times are UTC; so is the axis.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: {
        // A little room on the right, so a marker at the latest event is not cut in half.
        x: { time: true, range: (_, min, max) => [min, max + Math.max((max - min) * 0.015, 3600)] },
        y: {
          // From 0, and high enough to show the highest threshold: how close a dyad is
          // to a level matters as much as its shape.
          range: (u, __, max) => [
            0,
            Math.max((max || 0) * 1.1, (highest(u.data[3] ?? []) + this.highestThreshold()) * 1.08, 1),
          ],
        },
      },
      series: [
        { label: 'event time', value: '{YYYY}-{MM}-{DD} {HH}:{mm} UTC' },
        { label: 'escalation E', stroke: COLORS.escalation, width: 2, value, points: { show: false } },
        { label: 'de-escalation D', stroke: COLORS.deEscalation, width: 2, value, points: { show: false } },
        // In the legend and the hover only: thresholdBands draws it, under the curves.
        {
          label: 'normal',
          stroke: withAlpha(COLORS.normal, 0.7),
          width: 1.5,
          value,
          paths: () => null,
          points: { show: false },
        },
      ],
      axes: [{ ...axis, values: timeLabels, size: 52 }, { ...axis, size: 44 }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false }, points: { size: 7 } },
      hooks: {
        drawClear: [thresholdBands(this.getConfig)],
        draw: [alertMarkers(this.getAlerts)],
      },
    };
    this.plot = new uPlot(options, data, this.container);
    // Follow the panel's width (the page is responsive).
    this.resizer = new ResizeObserver(() => {
      const width = Math.max(this.container.clientWidth, 300);
      if (this.plot && Math.abs(width - this.plot.width) > 1) this.plot.setSize({ width, height: 300 });
    });
    this.resizer.observe(this.container);
  }

  highestThreshold() {
    const config = this.getConfig();
    return config ? (thresholds(config).at(-1)?.[1] ?? 0) : 0;
  }

  /** New data (or a new dyad): rescales, and redraws the bands and markers. */
  show(data) {
    if (!globalThis.uPlot) return;
    if (!this.plot) this.create(data);
    else this.plot.setData(data);
  }

  redraw() {
    this.plot?.redraw(false, false);
  }
}

/**
 * A sparkline of a card's curve (from the API): plain SVG, no library. `span` is the time
 * window [start, end] in seconds, shared by all cards; the faint lines are the thresholds
 * above the dyad's normal, within the card's scale.
 */
export function sparkline(curve, config, span, width = 220, height = 44) {
  const [xs, es, ds, normal] = plotted(curve);
  const root = svg('svg', {
    class: 'sparkline',
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: 'none',
    'aria-hidden': 'true',
  });
  if (!xs.length || !span) return root;
  const [x0, x1] = span;
  const levels = config ? thresholds(config) : [];
  const top = Math.max(...es, ...ds, highest(normal) + (levels[0]?.[1] ?? 0)) * 1.1 || 1;
  const px = (t) => ((t - x0) / (x1 - x0 || 1)) * width;
  const py = (v) => height - 2 - (v / top) * (height - 4);
  const steps = normalSteps(xs, normal);
  const corners = stepCorners(steps, px, 0, width);
  /** The normal plus `offset` as SVG points. */
  const stepped = (offset) => corners.map(([x, v]) => `${x.toFixed(1)},${py(v + offset).toFixed(1)}`).join(' ');
  for (const [level, threshold] of levels) {
    if (steps.some(([, value]) => value + threshold <= top)) {
      root.append(svg('polyline', { points: stepped(threshold), class: `threshold ${level}` }));
    }
  }
  if (highest(normal) > 0) root.append(svg('polyline', { points: stepped(0), class: 'spark-normal' }));
  const path = (values) => values.map((v, i) => `${px(xs[i]).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
  root.append(
    svg('polyline', { points: path(ds), class: 'spark-d' }),
    svg('polyline', { points: path(es), class: 'spark-e' }),
  );
  return root;
}
