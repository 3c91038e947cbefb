// CrisisMon dashboard: dyad cards, the chosen dyad's chart, the alert and event feeds, live.
//
// State comes from a snapshot of the JSON API and then from /api/stream (Server-Sent
// Events). A new stream takes a new snapshot; when the browser reconnects one by itself, the
// server first sends what the page missed (the browser names the last message it had), or a
// `reload` message when it no longer has all of it, and then the page takes a new snapshot.
// Messages that arrive while a snapshot is loading wait for it and are applied on top, so
// nothing newer is overwritten by it.
//
// The server owns every rule: the dyads come in its order (most serious first) with the
// summaries it keeps, the curves as the core samples them, the levels and thresholds from
// /api/config. A stream message about a dyad only makes the page ask for them again.
//
// All data is rendered as text (see dom.js): event text comes from outside and is untrusted.

import { api, AuthError, NotFound } from './api.js';
import { DyadChart, plotted, sparkline } from './chart.js';
import { fill, flash, formatNumber, formatTime, h, link, timeElement } from './dom.js';

const MAX_CARDS = 24;
const FETCH_ALERTS = 200;
const FETCH_EVENTS = 100;
const SHOW_ALERTS = 200;
const SHOW_EVENTS = 100;
const KEEP_ALERTS = 2000;
const KEEP_EVENTS = 500;
const CHART_POINTS = 1500;
const SPARKLINE_POINTS = 120;
/** Stream messages come in bursts: what they change is fetched again at most this often. */
const RELOAD_MS = 300;
const REASONS = {
  'level-rise': 'level rises',
  'level-fall': 'level falls',
  'cooperation-overtakes': 'cooperation overtakes',
  'crisis-resolved': 'crisis resolved',
  'crisis-quiet': 'crisis closed, quiet',
  correction: 'correction',
};
const CONNECTION_TEXT = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  unauthorised: 'not authorised',
};

const state = {
  config: null,
  /** dyad → DyadSummary, in the API's order: most serious first */
  dyads: new Map(),
  /** dyad → DyadCurve of the cards shown, for their sparklines */
  sparklines: new Map(),
  /** the chosen dyad's DyadCurve, for the chart */
  curve: null,
  alertsLoaded: new Set(),
  /** alert_id → Alert */
  alerts: new Map(),
  /** event_id → EventDetail */
  events: new Map(),
  selected: null,
  /** the user chose the dyad; otherwise the chart follows the most serious one */
  pinned: false,
  /** the latest event time seen, in ms, for the header */
  clock: null,
  /** ids that arrived live, to highlight when their element is first drawn */
  fresh: new Set(),
};

const $ = (id) => document.getElementById(id);
const ui = {
  cards: $('cards'),
  cardsMore: $('cards-more'),
  chart: $('chart'),
  chartTitle: $('chart-title'),
  chartAlerts: $('chart-alerts'),
  legend: $('legend-levels'),
  alerts: $('alerts'),
  events: $('events'),
  alertsOnly: $('alerts-only'),
  eventsOnly: $('events-only'),
  connection: $('connection'),
  clock: $('clock'),
  banner: $('banner'),
};
const chart = new DyadChart(
  ui.chart,
  () => state.config,
  () => alertsOf(state.selected),
);
// What the chart draws (`.plot.data`: times, E, D and the normal E is judged against), for
// tests and the curious at the console.
window.__crisismonChart = chart;

// ---------------------------------------------------------------------------
// Rendering is batched: messages mark what changed, one animation frame draws it.

const dirty = new Set();
const changedDyads = new Set();
let frame = 0;

function invalidate(...parts) {
  for (const part of parts) dirty.add(part);
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  const parts = new Set(dirty);
  dirty.clear();
  prune();
  ensureSelection();
  if (parts.has('cards')) renderCards();
  if (parts.has('chart')) renderChart();
  if (parts.has('alerts')) renderAlerts();
  if (parts.has('events')) renderEvents();
  ui.clock.textContent = state.clock ? `${formatTime(new Date(state.clock).toISOString())} UTC` : '–';
  changedDyads.clear();
  state.fresh.clear();
}

const ALL = ['cards', 'chart', 'alerts', 'events'];

// ---------------------------------------------------------------------------
// Applying what the API says.

function advanceClock(iso) {
  const t = Date.parse(iso);
  if (Number.isFinite(t) && (state.clock === null || t > state.clock)) state.clock = t;
}

/** An index update changes its dyad's summary, its curve and maybe the order of the dyads. */
function applyIndex(update) {
  advanceClock(update.as_of);
  advanceClock(update.triggered_at);
  reloadDyadsSoon();
}

function applyAlert(alert) {
  advanceClock(alert.event_time);
  state.alerts.set(alert.alert_id, alert);
  reloadDyadsSoon(); // the card counts it and shows it as the last change
  invalidate('chart', 'alerts');
}

function keepEvent(detail) {
  advanceClock(detail.event.event_time);
  advanceClock(detail.retracted_by?.event_time);
  state.events.set(detail.event.event_id, detail);
}

function applyEvent(detail) {
  keepEvent(detail);
  refreshContributor(detail);
  invalidate('events');
}

function apply(kind, data) {
  if (kind === 'index') applyIndex(data);
  else if (kind === 'alert') applyAlert(data);
  else if (kind === 'event') applyEvent(data);
}

// ---------------------------------------------------------------------------
// Snapshots.

let loading = false;
let loadAgain = false;
let waiting = null; // stream messages that arrived during a snapshot

async function refresh() {
  if (loading) {
    loadAgain = true;
    return;
  }
  loading = true;
  waiting = [];
  try {
    do {
      loadAgain = false;
      await loadSnapshot();
    } while (loadAgain);
    hideBanner();
  } catch (error) {
    report(error, 'Could not load the dashboard');
  } finally {
    const pending = waiting;
    waiting = null;
    loading = false;
    for (const [kind, data] of pending) apply(kind, data);
    invalidate(...ALL);
  }
}

async function loadSnapshot() {
  const [config, alerts, events] = await Promise.all([
    api.config(),
    api.alerts(null, FETCH_ALERTS),
    api.events(FETCH_EVENTS),
  ]);
  state.config = config;
  fill(ui.legend, config.levels.map(levelChip));
  for (const alert of alerts.alerts) state.alerts.set(alert.alert_id, alert);
  events.events.forEach(keepEvent);
  // The chosen dyad's alerts are loaded again: they may have moved on.
  state.alertsLoaded.clear();
  await loadDyads();
  if (state.selected) await loadDyadAlerts(state.selected);
}

let dyadsTicket = 0;

/**
 * The dyads in the API's order, then the curves of the cards shown and of the chosen dyad.
 * Loads overlap when messages come fast; only the latest one started is shown.
 */
async function loadDyads() {
  const ticket = ++dyadsTicket;
  const { dyads } = await api.dyads();
  if (ticket !== dyadsTicket) return;
  const before = state.dyads;
  state.dyads = new Map(dyads.map((summary) => [summary.dyad, summary]));
  for (const summary of dyads) {
    advanceClock(summary.as_of);
    if (JSON.stringify(summary) !== JSON.stringify(before.get(summary.dyad))) changedDyads.add(summary.dyad);
  }
  ensureSelection();
  invalidate('cards', 'chart');
  const shown = shownDyads().map((summary) => summary.dyad);
  const [sparklines] = await Promise.all([
    Promise.all(shown.map((dyad) => api.curve(dyad, SPARKLINE_POINTS))),
    loadChart(),
  ]);
  if (ticket !== dyadsTicket) return;
  state.sparklines = new Map(shown.map((dyad, i) => [dyad, sparklines[i]]));
  invalidate('cards');
}

let reloadTimer = 0;

/** Load the dyads and curves again, once for a burst of stream messages. */
function reloadDyadsSoon() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => {
    reloadTimer = 0;
    loadDyads().catch((error) => report(error, 'Could not load the dyads'));
  }, RELOAD_MS);
}

let chartTicket = 0;

/**
 * The chosen dyad's curve, once the API lists the dyad (a dyad chosen by the address may have
 * no update yet). A later choice or load wins over one still on its way.
 */
async function loadChart() {
  const ticket = ++chartTicket;
  const dyad = state.selected;
  const curve = state.dyads.has(dyad) ? await api.curve(dyad, CHART_POINTS) : null;
  if (ticket !== chartTicket) return;
  state.curve = curve;
  invalidate('chart');
}

/** All alerts of a dyad, for the chart's markers (the global list is capped). */
async function loadDyadAlerts(dyad) {
  if (state.alertsLoaded.has(dyad)) return;
  state.alertsLoaded.add(dyad);
  try {
    const answer = await api.alerts(dyad, 1000);
    for (const alert of answer.alerts) state.alerts.set(alert.alert_id, alert);
  } catch (error) {
    state.alertsLoaded.delete(dyad);
    report(error, `Could not load the alerts of ${dyad}`);
  }
  invalidate('chart', 'alerts');
}

/**
 * Memory stays bounded on a long-open page: past a limit, the oldest alerts and events are
 * let go (down to 90% of it, so this sorts once in a while, not at every message).
 */
function prune() {
  const trim = (map, limit, timeOf) => {
    if (map.size <= limit) return;
    const oldest = [...map.entries()].sort((a, b) => timeOf(a[1]) - timeOf(b[1]));
    for (const [key] of oldest.slice(0, map.size - Math.floor(limit * 0.9))) map.delete(key);
  };
  trim(state.alerts, KEEP_ALERTS, (alert) => Date.parse(alert.event_time));
  trim(state.events, KEEP_EVENTS, (detail) => Date.parse(detail.event.event_time));
}

// ---------------------------------------------------------------------------
// The live stream.

let source = null;
let retryTimer = 0;
let retryDelay = 1000;

function connect() {
  clearTimeout(retryTimer);
  source?.close();
  source = new EventSource('/api/stream'); // same-origin: the token cookie goes with it
  const current = source;
  let opened = false;
  current.addEventListener('open', () => {
    retryDelay = 1000;
    setConnection('live');
    if (!opened) refresh(); // later opens are the browser's reconnects: they resume, or reload
    opened = true;
  });
  for (const kind of ['index', 'alert', 'event']) {
    current.addEventListener(kind, (message) => receive(kind, message.data));
  }
  // The server no longer holds what this page missed while it was away: fetch the state anew.
  current.addEventListener('reload', () => refresh());
  current.addEventListener('error', () => {
    if (current !== source) return;
    setConnection(ui.connection.dataset.state === 'unauthorised' ? 'unauthorised' : 'reconnecting');
    // CONNECTING: the browser retries by itself (the server asks for 2 s). CLOSED: it gave up,
    // as it does on any answer but 200, a 401 say; find out which and retry ourselves.
    if (current.readyState === EventSource.CLOSED) probe();
  });
}

function receive(kind, text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    console.warn('unreadable stream message', kind);
    return;
  }
  if (kind === 'alert') state.fresh.add(data.alert_id);
  if (kind === 'event') state.fresh.add(data.event?.event_id);
  if (waiting) waiting.push([kind, data]);
  else apply(kind, data);
}

async function probe() {
  clearTimeout(retryTimer);
  try {
    await api.status();
  } catch (error) {
    if (error instanceof AuthError) {
      showAuthNeeded();
      // Until the cookie holds the right token (the reader opens /?access_token=... in
      // another tab, say; coming back to this one checks at once, see start()).
      retryTimer = setTimeout(probe, 3000);
      return;
    }
  }
  retryTimer = setTimeout(connect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 10_000);
}

function setConnection(name) {
  ui.connection.dataset.state = name;
  ui.connection.textContent = CONNECTION_TEXT[name];
}

// ---------------------------------------------------------------------------
// Messages to the reader.

function report(error, what) {
  if (error instanceof AuthError) {
    showAuthNeeded();
    return;
  }
  console.error(what, error);
  ui.banner.dataset.kind = 'error';
  fill(ui.banner, h('strong', {}, `${what}:`), ' ', error.message || String(error));
  ui.banner.hidden = false;
}

function showAuthNeeded() {
  setConnection('unauthorised');
  ui.banner.dataset.kind = 'auth';
  fill(
    ui.banner,
    h('strong', {}, 'Not authorised (401).'),
    ' This worker needs its access token: open ',
    h('code', {}, `${location.origin}/?access_token=…`),
    ' once, with the token the worker was given (CRISISMON_API_TOKEN). The browser then keeps it in a cookie.',
  );
  ui.banner.hidden = false;
}

function hideBanner() {
  ui.banner.hidden = true;
  ui.banner.replaceChildren();
  if (source && source.readyState === EventSource.OPEN) setConnection('live');
}

// ---------------------------------------------------------------------------
// Selection.

function shownDyads() {
  const shown = [...state.dyads.values()].slice(0, MAX_CARDS);
  const chosen = state.dyads.get(state.selected);
  if (chosen && !shown.includes(chosen)) shown.push(chosen);
  return shown;
}

/** Without a choice of the reader's, the chart shows the most serious dyad. */
function ensureSelection() {
  if (state.pinned && state.selected) return;
  const [first] = state.dyads.values();
  if (first && first.dyad !== state.selected) select(first.dyad, false);
}

function select(dyad, pinned) {
  const changed = dyad !== state.selected;
  state.selected = dyad;
  state.pinned = state.pinned || pinned;
  if (pinned) history.replaceState(null, '', `#${dyad}`);
  for (const el of document.querySelectorAll('.only-dyad')) el.textContent = dyad;
  if (changed) {
    loadChart().catch((error) => report(error, `Could not load the curve of ${dyad}`));
    loadDyadAlerts(dyad);
  }
  invalidate(...ALL);
}

function alertsOf(dyad) {
  return [...state.alerts.values()].filter((alert) => alert.dyad === dyad);
}

// ---------------------------------------------------------------------------
// Cards.

const cardElements = new Map();

function levelChip(level) {
  return h('span', { class: 'level-chip', dataset: { level } }, level);
}

/** The sparklines share one time window, so cards can be compared at a glance. */
function sparkWindow(dyads) {
  const curves = dyads.map((summary) => state.sparklines.get(summary.dyad)).filter((curve) => curve?.times.length);
  if (!curves.length) return null;
  const starts = curves.map((curve) => curve.times[0]);
  const ends = curves.map((curve) => curve.times.at(-1));
  return [Math.min(...starts), Math.max(...ends)];
}

function cardContent(summary, span) {
  return [
    h(
      'span',
      { class: 'card-head' },
      h('span', { class: 'dyad-name' }, summary.dyad),
      levelChip(summary.level),
    ),
    h(
      'span',
      { class: 'card-values' },
      h(
        'span',
        { class: 'value e', title: 'escalation index E' },
        h('span', { class: 'label' }, 'E'),
        formatNumber(summary.escalation_index),
      ),
      h(
        'span',
        { class: 'value d', title: 'de-escalation index D' },
        h('span', { class: 'label' }, 'D'),
        formatNumber(summary.de_escalation_index),
      ),
      summary.escalation_baseline > 0
        ? h(
            'span',
            { class: 'value normal', title: "the dyad's normal: levels follow E above it" },
            h('span', { class: 'label' }, 'normal'),
            formatNumber(summary.escalation_baseline),
          )
        : null,
    ),
    summary.crisis_since
      ? h(
          'span',
          { class: 'crisis-open', title: 'open until cooperation resolves it or it stays quiet' },
          'crisis open since ',
          timeElement(summary.crisis_since),
        )
      : null,
    sparkline(state.sparklines.get(summary.dyad), state.config, span),
    h(
      'span',
      { class: 'card-foot' },
      summary.last_change
        ? [
            'last change ',
            timeElement(summary.last_change),
            ` · ${summary.alerts} alert${summary.alerts === 1 ? '' : 's'}`,
          ]
        : 'no alerts yet',
    ),
  ];
}

function renderCards() {
  const shown = shownDyads();
  const span = sparkWindow(shown);
  const wanted = shown.map((summary) => {
    let el = cardElements.get(summary.dyad);
    if (!el) {
      el = h('button', {
        type: 'button',
        class: 'card',
        onclick: () => select(summary.dyad, true),
      });
      cardElements.set(summary.dyad, el);
    }
    el.dataset.dyad = summary.dyad;
    el.dataset.level = summary.level;
    el.setAttribute('aria-pressed', String(summary.dyad === state.selected));
    fill(el, cardContent(summary, span));
    if (changedDyads.has(summary.dyad) && el.isConnected) flash(el);
    return el;
  });
  syncChildren(ui.cards, wanted, 'Waiting for events…');
  const hidden = state.dyads.size - shown.length;
  ui.cardsMore.hidden = hidden <= 0;
  ui.cardsMore.textContent = `${hidden} quieter dyad${hidden === 1 ? '' : 's'} not shown.`;
}

/** Put `wanted` in `container` in that order, moving (not rebuilding) elements already there. */
function syncChildren(container, wanted, emptyText) {
  if (!wanted.length) {
    fill(container, h('p', { class: 'empty' }, emptyText));
    return;
  }
  const keep = new Set(wanted);
  for (const child of [...container.children]) if (!keep.has(child)) child.remove();
  wanted.forEach((el, i) => {
    if (container.children[i] !== el) container.insertBefore(el, container.children[i] ?? null);
  });
}

// ---------------------------------------------------------------------------
// The chart of the chosen dyad.

function renderChart() {
  const dyad = state.selected;
  const summary = state.dyads.get(dyad);
  if (!dyad || !summary) {
    ui.chartTitle.textContent = 'Choose a dyad';
    return;
  }
  fill(ui.chartTitle, dyad, ' ', levelChip(summary.level));
  ui.chart.dataset.dyad = dyad;
  chart.show(plotted(state.curve?.dyad === dyad ? state.curve : null));
  const alerts = alertsOf(dyad).sort((a, b) => Date.parse(a.event_time) - Date.parse(b.event_time));
  fill(
    ui.chartAlerts,
    alerts.length ? h('span', { class: 'muted' }, 'alerts:') : h('span', { class: 'muted' }, 'no alerts'),
    alerts.map((alert) =>
      h(
        'button',
        {
          type: 'button',
          class: 'marker',
          dataset: { level: alert.level, reason: alert.reason_code },
          title: alert.reason,
          onclick: () => revealAlert(alert.alert_id),
        },
        timeElement(alert.event_time),
        ' ',
        transitionText(alert),
      ),
    ),
  );
}

function transitionText(alert) {
  return alert.previous_level === alert.level
    ? `${alert.level}: ${REASONS[alert.reason_code] ?? alert.reason_code}`
    : `${alert.previous_level} → ${alert.level}`;
}

// ---------------------------------------------------------------------------
// The alert feed: each alert opens to the events that drove it.

const alertElements = new Map();

function renderAlerts() {
  const only = ui.alertsOnly.checked ? state.selected : null;
  const alerts = [...state.alerts.values()]
    .filter((alert) => !only || alert.dyad === only)
    .sort((a, b) => Date.parse(b.event_time) - Date.parse(a.event_time) || b.alert_id.localeCompare(a.alert_id))
    .slice(0, SHOW_ALERTS);
  const wanted = alerts.map((alert) => {
    let el = alertElements.get(alert.alert_id);
    if (!el) {
      el = alertElement(alert);
      alertElements.set(alert.alert_id, el);
      if (state.fresh.has(alert.alert_id)) el.classList.add('flash');
    }
    el.classList.toggle('chosen', alert.dyad === state.selected);
    return el;
  });
  for (const [id, el] of alertElements) if (!state.alerts.has(id) && !el.isConnected) alertElements.delete(id);
  syncChildren(ui.alerts, wanted, only ? `No alerts for ${only}.` : 'No alerts yet.');
}

function alertElement(alert) {
  const body = h('div', { class: 'contributors' });
  const details = h(
    'details',
    {
      class: 'alert',
      dataset: {
        alertId: alert.alert_id,
        dyad: alert.dyad,
        level: alert.level,
        from: alert.previous_level,
        reason: alert.reason_code,
        time: alert.event_time,
      },
    },
    h(
      'summary',
      {},
      h(
        'span',
        { class: 'alert-line' },
        alert.previous_level === alert.level
          ? levelChip(alert.level)
          : [levelChip(alert.previous_level), h('span', { class: 'arrow' }, '→'), levelChip(alert.level)],
        h('span', { class: `reason-code ${alert.kind}` }, REASONS[alert.reason_code] ?? alert.reason_code),
        h('span', { class: 'dyad-name' }, alert.dyad),
        timeElement(alert.event_time),
      ),
      h('span', { class: 'alert-reason' }, alert.reason),
    ),
    body,
  );
  details.addEventListener('toggle', () => {
    if (details.open && !body.dataset.loaded) loadContributors(alert, body);
  });
  return details;
}

async function loadContributors(alert, body) {
  body.dataset.loaded = 'true';
  fill(body, h('p', { class: 'muted' }, 'Loading the events behind this alert…'));
  const items = await Promise.all(
    alert.contributors.map(async (contributor) => {
      try {
        return [contributor, await api.event(contributor.event_id)];
      } catch (error) {
        return [contributor, error];
      }
    }),
  );
  const authError = items.find(([, found]) => found instanceof AuthError);
  if (authError) {
    body.dataset.loaded = '';
    report(authError[1]);
  }
  fill(
    body,
    h('p', { class: 'muted small' }, 'The events behind it, with what each weighed at the alert’s time:'),
    h(
      'ol',
      { class: 'contributor-list' },
      items.map(([contributor, found]) =>
        h(
          'li',
          { class: 'contributor', dataset: { contributor: contributor.event_id } },
          h(
            'span',
            { class: `contribution ${contributor.index}` },
            `${contributor.index} +${formatNumber(contributor.contribution, 2)}`,
          ),
          found instanceof Error
            ? h(
                'p',
                { class: 'muted' },
                found instanceof NotFound
                  ? `Event ${contributor.event_id} is no longer kept by the API.`
                  : `Event ${contributor.event_id} could not be loaded: ${found.message}`,
              )
            : eventElement(found),
        ),
      ),
    ),
  );
}

/** An event shown under an open alert follows the stream too (a retraction, say). */
function refreshContributor(detail) {
  for (const item of document.querySelectorAll('li.contributor')) {
    if (item.dataset.contributor !== detail.event.event_id) continue;
    item.querySelector('article.event')?.replaceWith(eventElement(detail));
  }
}

function revealAlert(alertId) {
  if (ui.alertsOnly.checked && state.alerts.get(alertId)?.dyad !== state.selected) ui.alertsOnly.checked = false;
  renderAlerts();
  const el = alertElements.get(alertId);
  if (!el) return;
  el.open = true;
  el.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  flash(el);
}

// ---------------------------------------------------------------------------
// Events, with the words they were reported in.

const eventElements = new Map(); // event_id → {detail, el}

function eventElement(detail) {
  const { event, dyad } = detail;
  const retraction = detail.retracted_by;
  return h(
    'article',
    {
      class: retraction ? 'event retracted' : 'event',
      dataset: { eventId: event.event_id, dyad, retracted: retraction ? 'true' : null },
    },
    h(
      'div',
      { class: 'event-meta' },
      timeElement(event.event_time),
      event.time_precision !== 'exact'
        ? h('span', { class: 'precision', title: 'how far the time can be trusted' }, `± ${event.time_precision}`)
        : null,
      dyad ? h('span', { class: 'dyad-name' }, dyad) : null,
      h(
        'span',
        { class: 'cameo', title: detail.cameo_description ?? 'CAMEO event code' },
        `CAMEO ${event.cameo_code}`,
      ),
      typeof detail.goldstein === 'number'
        ? h(
            'span',
            { class: `goldstein ${detail.feeds ?? ''}`, title: `Goldstein score; feeds ${detail.feeds}` },
            `${detail.goldstein > 0 ? '+' : ''}${detail.goldstein.toFixed(1)}`,
          )
        : null,
      retraction ? h('span', { class: 'retracted-tag' }, 'retracted') : null,
      h('span', { class: 'event-id' }, event.event_id),
    ),
    h(
      'p',
      { class: 'actors' },
      h('span', { class: 'actor', title: event.source.code ?? '' }, event.source.name),
      h('span', { class: 'arrow' }, ' → '),
      h('span', { class: 'actor', title: event.target.code ?? '' }, event.target.name),
    ),
    event.summary ? h('p', { class: 'summary' }, event.summary) : null,
    h('blockquote', { class: 'quote' }, event.provenance.quote),
    h(
      'p',
      { class: 'provenance' },
      'from ',
      link(event.provenance.document),
      ' · coded by ',
      event.provenance.coded_by,
    ),
    retraction
      ? h(
          'p',
          { class: 'retraction', role: 'note' },
          h('strong', {}, 'Retracted'),
          ` ${formatTime(retraction.event_time)} by `,
          h('span', { class: 'retracted-by' }, retraction.retracted_by),
          ': ',
          h('span', { class: 'retraction-reason' }, retraction.reason),
        )
      : null,
  );
}

function renderEvents() {
  const only = ui.eventsOnly.checked ? state.selected : null;
  const details = [...state.events.values()]
    .filter((detail) => !only || detail.dyad === only)
    .sort(
      (a, b) =>
        Date.parse(b.event.event_time) - Date.parse(a.event.event_time) ||
        b.event.event_id.localeCompare(a.event.event_id),
    )
    .slice(0, SHOW_EVENTS);
  const wanted = details.map((detail) => {
    const id = detail.event.event_id;
    let known = eventElements.get(id);
    if (!known || known.detail !== detail) {
      const el = eventElement(detail);
      if (state.fresh.has(id)) el.classList.add('flash');
      known?.el.replaceWith(el);
      known = { detail, el };
      eventElements.set(id, known);
    }
    return known.el;
  });
  for (const [id, known] of eventElements) {
    if (!state.events.has(id) && !known.el.isConnected) eventElements.delete(id);
  }
  syncChildren(ui.events, wanted, only ? `No events for ${only}.` : 'No events yet.');
}

// ---------------------------------------------------------------------------
// Start.

function start() {
  // The token, if the page was opened with one, is in a cookie now: keep it out of the
  // address bar, the history and screenshots.
  const url = new URL(location.href);
  if (url.searchParams.has('access_token')) {
    url.searchParams.delete('access_token');
    history.replaceState(null, '', url);
  }
  const wanted = decodeURIComponent(location.hash.slice(1)).toUpperCase();
  if (/^[A-Z]{3}-[A-Z]{3}$/.test(wanted)) {
    state.selected = wanted;
    state.pinned = true;
    for (const el of document.querySelectorAll('.only-dyad')) el.textContent = wanted;
  }
  ui.alertsOnly.addEventListener('change', () => invalidate('alerts'));
  ui.eventsOnly.addEventListener('change', () => invalidate('events'));
  window.addEventListener('focus', () => {
    if (ui.connection.dataset.state === 'unauthorised') probe();
  });
  setConnection('connecting');
  connect();
}

start();
