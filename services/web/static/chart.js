// The time chart of the chosen dyad (uPlot) and the cards' sparklines (SVG).
//
// The API gives the indices at each event (index updates). Between events they only decay,
// exponentially with the configured half-life, so the curves are drawn that way: a jump at
// each event and a decay after it, up to the latest event time (the "clock"). Straight lines
// between updates would show escalation that fades linearly, or earlier than it did.

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

const SAMPLES_PER_GAP = 16;

/**
 * Index updates → [times, E, D] (seconds, for uPlot), with the decay drawn between updates.
 * Updates at the same event time collapse to the last one: the state after all of them.
 */
export function decayedSeries(updates, halfLifeSeconds, until) {
  const points = [];
  for (const update of updates) {
    const t = Date.parse(update.as_of) / 1000;
    const point = { t, e: update.escalation_index, d: update.de_escalation_index };
    if (points.length && points[points.length - 1].t === t) points[points.length - 1] = point;
    else points.push(point);
  }
  const xs = [];
  const es = [];
  const ds = [];
  const push = (t, e, d) => {
    xs.push(t);
    es.push(e);
    ds.push(d);
  };
  points.forEach((point, i) => {
    push(point.t, point.e, point.d);
    const hasNext = i + 1 < points.length;
    // Up to just before the next update, so the jump there is (nearly) vertical; after the
    // last update, up to the clock.
    const end = hasNext ? points[i + 1].t - 1 : Math.max(until ?? point.t, point.t);
    if (end <= point.t) return;
    for (let k = 1; k <= SAMPLES_PER_GAP; k++) {
      const t = point.t + ((end - point.t) * k) / SAMPLES_PER_GAP;
      const factor = 2 ** (-(t - point.t) / halfLifeSeconds);
      push(t, point.e * factor, point.d * factor);
    }
  });
  return [xs, es, ds];
}

/** The threshold bands, clearing lines and alert markers, drawn on uPlot's canvas. */
function thresholdBands(getConfig) {
  return (u) => {
    const config = getConfig();
    if (!config) return;
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const bands = [
      ['watch', config.watch, config.warning],
      ['warning', config.warning, config.critical],
      ['critical', config.critical, Infinity],
    ];
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    const y = (value) => u.valToPos(value, 'y', true);
    const dpr = devicePixelRatio || 1;
    for (const [level, from, to] of bands) {
      const yFrom = y(from);
      const yTo = Number.isFinite(to) ? y(to) : top;
      ctx.fillStyle = withAlpha(COLORS[level], 0.09);
      ctx.fillRect(left, yTo, width, yFrom - yTo);
      // The threshold itself.
      ctx.strokeStyle = withAlpha(COLORS[level], 0.6);
      ctx.lineWidth = dpr;
      ctx.setLineDash([]);
      line(ctx, left, yFrom, left + width);
      // Where the level is left again: threshold × clearing ratio (hysteresis).
      ctx.strokeStyle = withAlpha(COLORS[level], 0.45);
      ctx.setLineDash([2 * dpr, 4 * dpr]);
      line(ctx, left, y(from * config.clearing_ratio), left + width);
      ctx.setLineDash([]);
      ctx.fillStyle = withAlpha(COLORS[level], 0.85);
      ctx.font = `${11 * dpr}px system-ui, sans-serif`;
      ctx.textBaseline = 'bottom';
      ctx.textAlign = 'left'; // uPlot leaves its last axis' alignment on the context
      if (yFrom > top + 12 * dpr) ctx.fillText(`${level} ≥ ${from}`, left + 6 * dpr, yFrom - 2 * dpr);
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
      const x = u.valToPos(Date.parse(alert.event_time) / 1000, 'x', true);
      if (x < left - 1 || x > left + width + 1) continue;
      const color = alert.reason_code === 'cooperation-overtakes' ? COLORS.deEscalation : COLORS[alert.level];
      ctx.strokeStyle = withAlpha(color, 0.7);
      ctx.lineWidth = dpr;
      ctx.setLineDash([4 * dpr, 3 * dpr]);
      line(ctx, x, top, x, top + height);
      ctx.setLineDash([]);
      // A dot on the index the alert is about: levels follow E; "cooperation overtakes" is D's.
      const value =
        alert.reason_code === 'cooperation-overtakes' ? alert.de_escalation_index : alert.escalation_index;
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
          // From 0, and high enough to show the critical threshold: how close a dyad is
          // to a level matters as much as its shape.
          range: (_, __, max) => [0, Math.max((max || 0) * 1.1, (this.getConfig()?.critical ?? 0) * 1.08, 1)],
        },
      },
      series: [
        { label: 'event time', value: '{YYYY}-{MM}-{DD} {HH}:{mm} UTC' },
        { label: 'escalation E', stroke: COLORS.escalation, width: 2, value, points: { show: false } },
        { label: 'de-escalation D', stroke: COLORS.deEscalation, width: 2, value, points: { show: false } },
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
 * A sparkline of E and D for a card: plain SVG, no library. `span` is the time window
 * [start, end] in seconds, shared by all cards; the faint lines are the thresholds within
 * the card's scale.
 */
export function sparkline(series, config, span, width = 220, height = 44) {
  const [xs, es, ds] = series;
  const root = svg('svg', {
    class: 'sparkline',
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: 'none',
    'aria-hidden': 'true',
  });
  if (!xs.length || !span) return root;
  const [x0, x1] = span;
  const top = Math.max(...es, ...ds, config ? config.watch : 0) * 1.1 || 1;
  const px = (t) => ((t - x0) / (x1 - x0 || 1)) * width;
  const py = (v) => height - 2 - (v / top) * (height - 4);
  if (config) {
    for (const level of ['watch', 'warning', 'critical']) {
      if (config[level] <= top) {
        const y = py(config[level]).toFixed(1);
        root.append(svg('line', { x1: 0, x2: width, y1: y, y2: y, class: `threshold ${level}` }));
      }
    }
  }
  const path = (values) => values.map((v, i) => `${px(xs[i]).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
  root.append(
    svg('polyline', { points: path(ds), class: 'spark-d' }),
    svg('polyline', { points: path(es), class: 'spark-e' }),
  );
  return root;
}
