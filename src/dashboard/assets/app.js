// tidewatch live dashboard. Plain ES2020, no dependencies: the server embeds this file.
//
// Data flow: open the EventSource first, then fetch the warehouse list and each warehouse's
// windows; ticks upsert rows by window_start. Charts are SVG strings built in one go and are
// redrawn only for warehouses whose rows or alert marks changed.
'use strict';

(() => {
  const MAX_ROWS = 360; // windows kept per warehouse
  const SHOW = 120; // windows shown per chart
  const MINUTE = 60000;
  const GAP_MS = 1.5 * MINUTE; // a missing window breaks the line

  // Chart geometry (SVG user units; the SVG scales with the card width).
  const CW = 320;
  const CH = 84;
  const ML = 40;
  const MR = 8;
  const MT = 7;
  const MB = 17;
  const PW = CW - ML - MR;
  const PH = CH - MT - MB;

  const CHARTS = [
    {
      key: 'orders',
      title: 'orders / min',
      zeroFloor: true,
      value: (r) => num(r.orders),
      band: (r) => r.orders_forecast,
      bandScale: 1,
      fmt: (v) => fmtCount(v),
      fmtExp: (v) => v.toFixed(1),
    },
    {
      key: 'delivery',
      title: 'mean delivery (min)',
      zeroFloor: false,
      value: (r) => {
        const v = num(r.mean_duration_ms);
        return v === null ? null : v / MINUTE;
      },
      band: (r) => r.duration_forecast,
      bandScale: 1 / MINUTE,
      fmt: (v) => fmtDuration(v * MINUTE),
      fmtExp: (v) => fmtDuration(v * MINUTE),
    },
    {
      key: 'temperature',
      title: 'temperature (°C)',
      zeroFloor: false,
      value: (r) => num(r.mean_temp),
      band: () => null,
      bandScale: 1,
      fmt: (v) => v.toFixed(1) + ' °C',
      fmtExp: (v) => v.toFixed(1) + ' °C',
    },
  ];

  // Alert metric -> chart.
  const METRIC_CHART = {
    delivery_duration: 'delivery',
    order_volume: 'orders',
    orders: 'orders',
    temperature: 'temperature',
  };

  const state = {
    ticks: 0,
    lastSeq: null,
    hadError: false,
    gotTick: false,
    es: null,
    summary: null,
    alerts: [],
    alertsSig: null,
    whs: new Map(), // name -> warehouse
    orderSig: '',
    renderQueued: false,
  };

  const grid = document.getElementById('warehouse-grid');

  // ---------------------------------------------------------------- formatting

  function num(v) {
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }

  function pad2(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  // `YYYY-MM-DD HH:MM:SS` (UTC).
  function fmtUtc(ms) {
    if (num(ms) === null) return '—';
    return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
  }

  // `HH:MM` (UTC).
  function fmtHm(ms) {
    if (num(ms) === null) return '—';
    const d = new Date(ms);
    return pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes());
  }

  // Milliseconds as `4h30m`, `37m`, `42s`, `5.2s`.
  function fmtDuration(ms) {
    if (num(ms) === null) return '—';
    const sign = ms < 0 ? '-' : '';
    const s = Math.abs(ms) / 1000;
    if (s >= 3600) {
      const h = Math.floor(s / 3600);
      const m = Math.floor((s % 3600) / 60);
      return sign + h + 'h' + pad2(m) + 'm';
    }
    if (s >= 60) return sign + Math.floor(s / 60) + 'm';
    return sign + (s < 10 ? s.toFixed(1) : Math.round(s)) + 's';
  }

  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

  function fmtCount(v) {
    return num(v) === null ? '—' : intFmt.format(Math.round(v));
  }

  // A value of an alert, by its unit; `forecast` numbers get one decimal for counts.
  function fmtUnit(v, unit, forecast) {
    if (num(v) === null) return '—';
    switch (unit) {
      case 'ms':
        return fmtDuration(v);
      case 'celsius':
        return v.toFixed(1) + ' °C';
      case 'orders':
        return forecast ? v.toFixed(1) : fmtCount(v);
      default:
        return String(Math.round(v * 100) / 100);
    }
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setById(id, text) {
    setText(document.getElementById(id), text);
  }

  // ---------------------------------------------------------------- connection state

  function setConn(s) {
    const el = document.getElementById('status-connection');
    if (!el) return;
    setText(el, s);
    const cls = 'conn conn-' + s;
    if (el.className !== cls) el.className = cls;
  }

  // ---------------------------------------------------------------- warehouses

  function ensureWarehouse(name) {
    let w = state.whs.get(name);
    if (w) return w;
    w = {
      name,
      rows: new Map(), // window_start -> row
      sorted: [],
      sortedStale: false,
      version: 0,
      drawnSig: '',
      fetchGen: 0,
      buffering: false,
      buffer: [], // [seq, rows] received while a fetch is in flight
      retry: false,
      missing: false,
      card: null,
      svgs: {},
      values: {},
      badge: null,
      time: null,
    };
    buildCard(w);
    state.whs.set(name, w);
    setById('warehouse-count', '(' + state.whs.size + ')');
    return w;
  }

  function buildCard(w) {
    const card = document.createElement('article');
    card.className = 'warehouse-card';
    card.dataset.warehouse = w.name;
    let html =
      '<header class="card-head"><h3>' + esc(w.name) + '</h3><span class="card-badge"></span>' +
      '<span class="card-time"></span></header>';
    for (const c of CHARTS) {
      html +=
        '<div class="chart-block"><div class="chart-title"><span class="chart-name">' + esc(c.title) +
        '</span><span class="chart-value"></span></div>' +
        '<svg class="chart" data-metric="' + c.key + '" viewBox="0 0 ' + CW + ' ' + CH +
        '" role="img" aria-label="' + esc(c.title) + '"></svg></div>';
    }
    card.innerHTML = html;
    w.card = card;
    w.badge = card.querySelector('.card-badge');
    w.time = card.querySelector('.card-time');
    for (const c of CHARTS) {
      w.svgs[c.key] = card.querySelector('svg.chart[data-metric="' + c.key + '"]');
      w.values[c.key] = w.svgs[c.key].parentNode.querySelector('.chart-value');
    }
    grid.appendChild(card);
  }

  function sameForecast(a, b) {
    if (a === b) return true;
    if (!a || !b) return false;
    return a.expected === b.expected && a.lower === b.lower && a.upper === b.upper;
  }

  function sameRow(a, b) {
    return (
      a.orders === b.orders &&
      a.delivered === b.delivered &&
      a.mean_duration_ms === b.mean_duration_ms &&
      a.readings === b.readings &&
      a.mean_temp === b.mean_temp &&
      sameForecast(a.orders_forecast, b.orders_forecast) &&
      sameForecast(a.duration_forecast, b.duration_forecast)
    );
  }

  // Upserts rows by window_start; bumps the version only when something changed.
  function mergeRows(w, rows) {
    if (!Array.isArray(rows) || rows.length === 0) return;
    let changed = false;
    for (const r of rows) {
      if (!r || num(r.window_start) === null) continue;
      const old = w.rows.get(r.window_start);
      if (old && sameRow(old, r)) continue;
      w.rows.set(r.window_start, r);
      changed = true;
    }
    if (changed) rowsChanged(w);
  }

  // Replaces all rows; a change only if some row differs.
  function replaceRows(w, next) {
    let changed = next.size !== w.rows.size;
    if (!changed) {
      for (const [t, r] of next) {
        const old = w.rows.get(t);
        if (!old || !sameRow(old, r)) {
          changed = true;
          break;
        }
      }
    }
    if (!changed) return;
    w.rows = next;
    rowsChanged(w);
  }

  function rowsChanged(w) {
    if (w.rows.size > MAX_ROWS) {
      const keys = Array.from(w.rows.keys()).sort((a, b) => a - b);
      for (let i = 0; i < keys.length - MAX_ROWS; i++) w.rows.delete(keys[i]);
    }
    w.version++;
    w.sortedStale = true;
    scheduleRender();
  }

  function sortedRows(w) {
    if (w.sortedStale) {
      w.sorted = Array.from(w.rows.values()).sort((a, b) => a.window_start - b.window_start);
      w.sortedStale = false;
    }
    return w.sorted;
  }

  // ---------------------------------------------------------------- fetching

  async function getJson(url) {
    const res = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (!res.ok) {
      const err = new Error(url + ': HTTP ' + res.status);
      err.status = res.status;
      throw err;
    }
    return res.json();
  }

  // Fetches a warehouse's windows whole and replaces what we hold (the server may have removed
  // rows: it then lists the warehouse in `truncated`). Rows that ticks brought while the fetch
  // was in flight are kept when they are newer than the answer.
  async function fetchWindows(name) {
    const w = ensureWarehouse(name);
    const gen = ++w.fetchGen;
    w.buffering = true;
    w.buffer = [];
    w.retry = false;
    try {
      const body = await getJson('/api/windows?warehouse=' + encodeURIComponent(name));
      if (gen !== w.fetchGen) return; // a newer fetch is on its way
      w.missing = false;
      const next = new Map();
      let newest = -Infinity;
      for (const r of Array.isArray(body && body.windows) ? body.windows : []) {
        if (!r || num(r.window_start) === null) continue;
        next.set(r.window_start, r);
        if (r.window_start > newest) newest = r.window_start;
      }
      // If the server says which tick its answer reflects, replay the later ticks' rows;
      // otherwise keep the rows of ticks received meanwhile that lie beyond the answer.
      const asOf = body && num(body.seq);
      for (const [seq, rows] of w.buffer) {
        for (const r of rows) {
          if (!r || num(r.window_start) === null) continue;
          if (asOf !== null ? seq > asOf : r.window_start > newest) next.set(r.window_start, r);
        }
      }
      replaceRows(w, next);
    } catch (e) {
      if (gen !== w.fetchGen) return;
      if (e && e.status === 404) {
        w.missing = true;
        replaceRows(w, new Map());
      } else {
        w.retry = true; // try again on the next tick
      }
      console.warn('tidewatch: ' + (e && e.message ? e.message : e));
    } finally {
      if (gen === w.fetchGen) {
        w.buffering = false;
        w.buffer = [];
      }
    }
  }

  // The warehouse list, then every warehouse's windows (known ones included).
  async function refetchAll() {
    let names = [];
    try {
      const body = await getJson('/api/warehouses');
      if (body && Array.isArray(body.warehouses)) names = body.warehouses.filter((n) => typeof n === 'string');
    } catch (e) {
      console.warn('tidewatch: ' + (e && e.message ? e.message : e));
    }
    const all = new Set(names);
    for (const n of state.whs.keys()) all.add(n);
    for (const n of all) ensureWarehouse(n);
    scheduleRender();
    await Promise.all(Array.from(all, (n) => fetchWindows(n)));
  }

  // Before the first tick, show what the plain endpoints say.
  async function fetchInitialStatus() {
    try {
      const [summary, alerts] = await Promise.all([getJson('/api/summary'), getJson('/api/alerts')]);
      if (state.gotTick) return; // a tick is newer
      state.summary = summary;
      state.alerts = alerts && Array.isArray(alerts.active) ? alerts.active : [];
      for (const a of state.alerts) if (a && typeof a.warehouse === 'string') ensureWarehouse(a.warehouse);
      renderStatus();
      renderAlerts();
      scheduleRender();
    } catch (e) {
      console.warn('tidewatch: ' + (e && e.message ? e.message : e));
    }
  }

  // ---------------------------------------------------------------- ticks

  function onTick(ev) {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      console.warn('tidewatch: bad tick', e);
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    state.ticks++;
    document.body.dataset.ticks = String(state.ticks);
    state.gotTick = true;
    setConn('live');

    const seq = num(msg.seq);
    const gap = state.lastSeq !== null && seq !== null && seq !== state.lastSeq + 1;
    if (seq !== null) state.lastSeq = seq;

    if (msg.summary && typeof msg.summary === 'object') state.summary = msg.summary;
    if (Array.isArray(msg.alerts)) state.alerts = msg.alerts;

    const refetch = new Set();
    const windows = msg.windows && typeof msg.windows === 'object' ? msg.windows : {};
    for (const name of Object.keys(windows)) {
      const known = state.whs.has(name);
      const w = ensureWarehouse(name);
      if (w.buffering) w.buffer.push([seq === null ? -Infinity : seq, windows[name]]);
      mergeRows(w, windows[name]);
      if (!known) refetch.add(name); // its earlier rows may predate our list
    }
    for (const a of state.alerts) {
      if (a && typeof a.warehouse === 'string' && !state.whs.has(a.warehouse)) {
        ensureWarehouse(a.warehouse);
        refetch.add(a.warehouse);
      }
    }
    if (Array.isArray(msg.truncated)) for (const n of msg.truncated) if (typeof n === 'string') refetch.add(n);
    for (const w of state.whs.values()) if (w.retry) refetch.add(w.name);

    if (gap) refetchAll();
    else for (const n of refetch) fetchWindows(n);

    // Cheap, so synchronous: the status strip and the alerts table.
    renderStatus();
    renderAlerts();
    scheduleRender();
  }

  function connect() {
    if (typeof EventSource === 'undefined') {
      setConn('reconnecting');
      return;
    }
    const es = new EventSource('/api/events');
    state.es = es;
    es.addEventListener('tick', onTick);
    es.addEventListener('open', () => {
      if (state.hadError) {
        state.hadError = false;
        state.lastSeq = null; // a new connection starts its own sequence
        refetchAll();
      }
    });
    es.addEventListener('error', () => {
      state.hadError = true;
      state.lastSeq = null;
      setConn('reconnecting');
      // The browser retries by itself unless the stream was refused (CLOSED): then we retry.
      if (es.readyState === 2 && state.es === es) {
        state.es = null;
        setTimeout(connect, 3000);
      }
    });
  }

  // ---------------------------------------------------------------- rendering

  function scheduleRender() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    const run = () => {
      state.renderQueued = false;
      renderCards();
    };
    if (typeof requestAnimationFrame === 'function' && document.visibilityState !== 'hidden') requestAnimationFrame(run);
    else setTimeout(run, 50);
  }

  function renderStatus() {
    const s = state.summary;
    if (!s) return;
    setById('watermark', fmtUtc(s.watermark_ms));
    const lag = num(s.watermark_lag_ms);
    setById('watermark-lag', lag === null ? '—' : fmtDuration(lag));
    const eps = num(s.events_per_second);
    setById('throughput', eps === null ? '—' : intFmt.format(eps) + ' ev/s');
    setById('events-in', fmtCount(s.events_in));
    setById('dead-letters', fmtCount(s.dead_letters));
    setById('late', fmtCount(s.late));
    setById('windows', fmtCount(s.windows));
    const active = num(s.alerts_active) !== null ? s.alerts_active : state.alerts.length;
    setById('active-count', fmtCount(active));
    const box = document.getElementById('active-count');
    if (box && box.parentNode) box.parentNode.classList.toggle('has-alerts', active > 0);
    const parts = [];
    if (s.input) parts.push(String(s.input));
    if (num(s.workers) !== null) parts.push(s.workers + (s.workers === 1 ? ' worker' : ' workers'));
    if (typeof s.logi2 === 'boolean') parts.push(s.logi2 ? 'LOGI-2 on' : 'LOGI-2 off');
    if (num(s.now_ms) !== null) parts.push('updated ' + fmtUtc(s.now_ms).slice(11) + ' UTC');
    setById('run-info', parts.join(' · '));
  }

  function sortedAlerts() {
    return state.alerts
      .filter((a) => a && typeof a === 'object')
      .slice()
      .sort(
        (a, b) =>
          (b.window_start || 0) - (a.window_start || 0) ||
          String(a.warehouse).localeCompare(String(b.warehouse)) ||
          String(a.rule).localeCompare(String(b.rule))
      );
  }

  function renderAlerts() {
    const sig = JSON.stringify(state.alerts);
    if (sig === state.alertsSig) return;
    state.alertsSig = sig;
    const tbody = document.querySelector('#alerts-table tbody');
    if (!tbody) return;
    const list = sortedAlerts();
    if (list.length === 0) {
      tbody.innerHTML = '<tr class="no-alerts"><td colspan="6">No active alerts</td></tr>';
      return;
    }
    let html = '';
    for (const a of list) {
      let expected = '—';
      if (num(a.expected) !== null) {
        expected = fmtUnit(a.expected, a.unit, true);
        if (num(a.lower) !== null && num(a.upper) !== null) {
          expected += ' [' + fmtUnit(a.lower, a.unit, true) + ', ' + fmtUnit(a.upper, a.unit, true) + ']';
        }
      }
      html +=
        '<tr class="alert-row" data-rule="' + esc(a.rule ?? '') + '" data-warehouse="' + esc(a.warehouse ?? '') +
        '" data-kind="' + esc(a.kind ?? '') + '" title="' + esc((a.kind ?? '') + ' alert, id ' + (a.id ?? '')) + '">' +
        '<td>' + esc(a.rule ?? '') + '</td>' +
        '<td>' + esc(a.warehouse ?? '') + '</td>' +
        '<td class="time" title="' + esc(fmtUtc(a.window_start)) + ' UTC">' + esc(fmtHm(a.window_start)) + '</td>' +
        '<td class="num">' + esc(fmtUnit(a.actual, a.unit, false)) + '</td>' +
        '<td class="num">' + esc(expected) + '</td>' +
        '<td class="detail">' + esc(a.detail ?? '') + '</td></tr>';
    }
    tbody.innerHTML = html;
  }

  // Alerts of each warehouse, by chart.
  function alertMarks() {
    const by = new Map();
    for (const a of state.alerts) {
      if (!a || typeof a.warehouse !== 'string') continue;
      let m = by.get(a.warehouse);
      if (!m) {
        m = { count: 0, sig: '', orders: [], delivery: [], temperature: [] };
        by.set(a.warehouse, m);
      }
      m.count++;
      m.sig += (a.id ?? '') + '@' + a.window_start + ':' + a.metric + ';';
      // A multi-metric rule names its metrics joined by `+`; `actual` is the first one's.
      const metrics = String(a.metric ?? '').split('+');
      metrics.forEach((metric, i) => {
        const chart = METRIC_CHART[metric.trim()];
        if (chart && !m[chart].some((x) => x.alert === a)) m[chart].push({ alert: a, first: i === 0 });
      });
    }
    return by;
  }

  function renderCards() {
    const marks = alertMarks();
    for (const w of state.whs.values()) {
      const m = marks.get(w.name);
      const sig = w.version + '|' + (m ? m.sig : '');
      if (sig === w.drawnSig) continue;
      w.drawnSig = sig;
      drawCard(w, m);
    }
    // Cards with an active alert first, then by name; move nodes only when the order changes.
    const names = Array.from(state.whs.keys()).sort((a, b) => {
      const aa = marks.has(a) ? 0 : 1;
      const bb = marks.has(b) ? 0 : 1;
      return aa - bb || (a < b ? -1 : a > b ? 1 : 0);
    });
    const orderSig = names.join('\n') + '|' + names.filter((n) => marks.has(n)).join(',');
    if (orderSig !== state.orderSig) {
      state.orderSig = orderSig;
      for (const n of names) grid.appendChild(state.whs.get(n).card);
    }
  }

  function drawCard(w, m) {
    w.card.classList.toggle('has-alert', !!m);
    setText(w.badge, m ? (m.count === 1 ? '1 alert' : m.count + ' alerts') : '');
    const all = sortedRows(w);
    const rows = visibleRows(all);
    setText(w.time, rows.length ? 'last window ' + fmtHm(rows[rows.length - 1].window_start) + ' UTC' : w.missing ? 'unknown to server' : '');
    for (const c of CHARTS) {
      const svg = w.svgs[c.key];
      svg.innerHTML = chartSvg(c, rows, m ? m[c.key] : []);
      w.values[c.key].innerHTML = latestValue(c, rows);
    }
  }

  // The last SHOW windows of event time (rows are sorted).
  function visibleRows(all) {
    if (all.length === 0) return all;
    const last = all[all.length - 1].window_start;
    const from = last - (SHOW - 1) * MINUTE;
    let i = Math.max(0, all.length - SHOW);
    while (i < all.length && all[i].window_start < from) i++;
    return all.slice(i);
  }

  function latestValue(c, rows) {
    for (let i = rows.length - 1; i >= 0; i--) {
      const v = c.value(rows[i]);
      if (v === null) continue;
      let html = esc(c.fmt(v));
      const b = rows[i] && c.band(rows[i]);
      if (b && num(b.expected) !== null) html += '<span class="exp">exp ' + esc(c.fmtExp(b.expected * c.bandScale)) + '</span>';
      return html;
    }
    return '';
  }

  // A "nice" step (1, 2, 2.5, 5 × 10^k) for about `n` intervals over `span`.
  function niceStep(span, n) {
    const raw = span / n;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  }

  function tickLabel(v, step) {
    const decimals = step >= 1 ? 0 : step >= 0.1 ? 1 : 2;
    return v.toFixed(decimals);
  }

  function chartSvg(c, rows, alerts) {
    if (rows.length === 0) {
      return '<text class="empty" x="' + (ML + PW / 2) + '" y="' + (MT + PH / 2) + '" text-anchor="middle" dominant-baseline="middle">waiting for data</text>';
    }
    const n = rows.length;
    const t0 = rows[0].window_start;
    let t1 = rows[n - 1].window_start;
    if (t1 <= t0) t1 = t0 + MINUTE;
    const vals = new Array(n);
    const bands = new Array(n);
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      const v = c.value(r);
      vals[i] = v;
      if (v !== null) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const b = c.band(r);
      if (b && typeof b === 'object') {
        const e = num(b.expected);
        const l = num(b.lower);
        const u = num(b.upper);
        const bb = {
          e: e === null ? null : e * c.bandScale,
          l: l === null ? null : l * c.bandScale,
          u: u === null ? null : u * c.bandScale,
        };
        bands[i] = bb;
        for (const x of [bb.e, bb.l, bb.u]) {
          if (x === null) continue;
          if (x < lo) lo = x;
          if (x > hi) hi = x;
        }
      } else {
        bands[i] = null;
      }
    }
    // Alert marks: at the window's value, or the alert's own actual value.
    const rowByStart = new Map();
    for (let i = 0; i < n; i++) rowByStart.set(rows[i].window_start, i);
    const dots = [];
    for (const { alert: a, first } of alerts) {
      const ws = num(a.window_start);
      if (ws === null || ws < t0 || ws > t1) continue;
      const i = rowByStart.get(ws);
      let v = i === undefined ? null : vals[i];
      if (v === null && first) {
        const act = num(a.actual);
        if (act !== null) v = a.unit === 'ms' ? act / MINUTE : act;
      }
      dots.push({ t: ws, v, a });
      if (v !== null) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (lo === Infinity) {
      return '<text class="empty" x="' + (ML + PW / 2) + '" y="' + (MT + PH / 2) + '" text-anchor="middle" dominant-baseline="middle">no values in the last ' + n + ' windows</text>' + timeLabels(t0, t1);
    }
    if (c.zeroFloor && lo > 0) lo = 0;
    if (hi - lo < 1e-9) {
      const pad = Math.max(Math.abs(hi) * 0.1, 1);
      lo -= c.zeroFloor && lo === 0 ? 0 : pad;
      hi += pad;
    }
    const step = niceStep(hi - lo, 3);
    lo = Math.floor(lo / step + 1e-9) * step;
    hi = Math.ceil(hi / step - 1e-9) * step;
    if (hi <= lo) hi = lo + step;

    const sx = PW / (t1 - t0);
    const sy = PH / (hi - lo);
    const X = (t) => (ML + (t - t0) * sx).toFixed(1);
    const Y = (v) => (MT + PH - (v - lo) * sy).toFixed(1);

    let out = '';
    // Grid and y tick labels.
    for (let v = lo, k = 0; v <= hi + step * 1e-6 && k < 12; v += step, k++) {
      const y = Y(v);
      out += '<line class="gridline" x1="' + ML + '" x2="' + (CW - MR) + '" y1="' + y + '" y2="' + y + '"/>';
      out += '<text x="' + (ML - 5) + '" y="' + y + '" text-anchor="end" dominant-baseline="middle">' + tickLabel(v, step) + '</text>';
    }
    out += '<line class="axis" x1="' + ML + '" x2="' + (CW - MR) + '" y1="' + (MT + PH) + '" y2="' + (MT + PH) + '"/>';

    // Forecast band (contiguous runs with lower and upper) and expected line.
    let band = '';
    let run = [];
    const flush = () => {
      if (run.length > 0) {
        let d = 'M' + X(run[0][0]) + ',' + Y(run[0][2]);
        for (let j = 1; j < run.length; j++) d += 'L' + X(run[j][0]) + ',' + Y(run[j][2]);
        for (let j = run.length - 1; j >= 0; j--) d += 'L' + X(run[j][0]) + ',' + Y(run[j][1]);
        band += d + 'Z';
      }
      run = [];
    };
    let prevT = null;
    for (let i = 0; i < n; i++) {
      const b = bands[i];
      const t = rows[i].window_start;
      if (!b || b.l === null || b.u === null) {
        flush();
        continue;
      }
      if (run.length > 0 && t - prevT > GAP_MS) flush();
      run.push([t, b.l, b.u]);
      prevT = t;
    }
    flush();
    if (band) out += '<path class="band" d="' + band + '"/>';
    const expected = linePath(rows, (i) => (bands[i] ? bands[i].e : null), X, Y);
    if (expected) out += '<path class="expected" d="' + expected + '"/>';

    // The values: one path, gaps at nulls and missing windows.
    const line = linePath(rows, (i) => vals[i], X, Y);
    if (line) out += '<path class="line" d="' + line + '"/>';

    for (const d of dots) {
      const y = d.v === null ? MT + 3 : Y(d.v);
      const a = d.a;
      out +=
        '<circle class="mark" cx="' + X(d.t) + '" cy="' + y + '" r="3.6"><title>' +
        esc((a.rule ?? '') + ' ' + fmtHm(d.t) + ' UTC: ' + fmtUnit(a.actual, a.unit, false) + (a.detail ? ' (' + a.detail + ')' : '')) +
        '</title></circle>';
    }
    return out + timeLabels(t0, rows[n - 1].window_start);
  }

  function timeLabels(t0, t1) {
    const y = CH - 3;
    let out = '<text x="' + ML + '" y="' + y + '" text-anchor="start">' + fmtHm(t0) + '</text>';
    if (t1 !== t0) out += '<text x="' + (CW - MR) + '" y="' + y + '" text-anchor="end">' + fmtHm(t1) + '</text>';
    return out;
  }

  // A path over rows where value(i) is not null; a lone point becomes a dot (round caps).
  function linePath(rows, value, X, Y) {
    let d = '';
    let runLen = 0;
    let prevT = null;
    for (let i = 0; i < rows.length; i++) {
      const v = value(i);
      const t = rows[i].window_start;
      if (v === null || (runLen > 0 && t - prevT > GAP_MS)) {
        if (runLen === 1) d += 'h0.01';
        runLen = 0;
        if (v === null) continue;
      }
      d += (runLen === 0 ? 'M' : 'L') + X(t) + ',' + Y(v);
      runLen++;
      prevT = t;
    }
    if (runLen === 1) d += 'h0.01';
    return d;
  }

  // ---------------------------------------------------------------- start

  setConn('connecting');
  document.body.dataset.ticks = '0';
  connect(); // the stream first, so that no change falls between the fetches and the ticks
  fetchInitialStatus();
  refetchAll();
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') scheduleRender();
  });
})();
