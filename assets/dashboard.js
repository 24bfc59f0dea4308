// The live dashboard: polls /actors and /tags, draws the tag cloud as a cloud
// and each actor's last minutes as a small chart. No libraries and nothing
// fetched from elsewhere: the blog binary serves all of it.
'use strict';

(() => {
  const ACTORS_EVERY_MS = 2000;
  const TAGS_EVERY_MS = 5000;
  const CLOUD = { width: 760, height: 320, minFont: 15, maxFont: 62, limit: 80, margin: 6 };
  const SPARK = { width: 300, height: 46, pad: 3 };
  const PALETTE = ['#2dd4bf', '#60a5fa', '#a78bfa', '#f472b6', '#fbbf24', '#34d399', '#fb923c', '#38bdf8', '#e879f9'];
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  // An XML namespace name, not an address: nothing is fetched from it.
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const seen = { counters: new Map(), cloudKey: null, measure: null };

  // ---------- small helpers

  function html(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    node.append(...children);
    return node;
  }

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    node.append(...children);
    return node;
  }

  async function getJson(path) {
    const res = await fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`${path} answered ${res.status}`);
    return res.json();
  }

  const number = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });
  const count = (n) => (n == null ? '–' : n >= 10000 ? `${number.format(n / 1000)}k` : number.format(n));
  const rate = (r) => (r >= 100 ? number.format(Math.round(r)) : r >= 10 ? number.format(r) : r.toFixed(2)).replace(/\.00$/, '') + '/s';
  function duration(seconds) {
    if (seconds == null) return '–';
    if (seconds < 1) return `${number.format(seconds * 1000)} ms`;
    if (seconds < 120) return `${number.format(seconds)} s`;
    return `${number.format(seconds / 60)} min`;
  }
  const label = (name) => name.replace(/_/g, ' ');

  function setText(id, text, tone) {
    const node = document.getElementById(id);
    node.textContent = text;
    node.className = tone || '';
  }

  function pill(id, text, tone) {
    const node = document.getElementById(id);
    node.dataset.tone = tone;
    node.querySelector('span').textContent = text;
  }

  // ---------- actors

  /** Handled per second since the previous poll; on the first poll, the last complete slot. */
  function rateOf(actor, now) {
    const before = seen.counters.get(actor.name);
    seen.counters.set(actor.name, { at: now, ok: actor.handled_ok });
    if (before && now > before.at) return Math.max(0, (actor.handled_ok - before.ok) * 1000 / (now - before.at));
    const h = actor.history;
    return h.ok.length ? h.ok[h.ok.length - 1] / h.slot_seconds : 0;
  }

  function cell(cls, ...children) {
    return html('td', { class: cls }, ...children);
  }

  function numberCell(value, tone) {
    const td = cell(`num${value === 0 ? ' zero' : tone ? ` ${tone}` : ''}`, count(value));
    return td;
  }

  /** A worker holding work and settling none for BLOG_STALL_AFTER (readiness names it too). */
  function stalledBadge(actor) {
    if (!actor.stalled) return [];
    return [html('span', { class: 'state stalled', 'data-stalled': 'true', title: 'work waits and none was settled for BLOG_STALL_AFTER' }, 'stalled')];
  }

  /** A worker's circuit breaker and pause switch, shown only when they hold it back. */
  function switches(breaker) {
    if (!breaker) return [];
    const badges = [];
    if (breaker.state !== 'closed') {
      const title = `circuit breaker ${breaker.state.replace('_', '-')}; opened ${breaker.opened} times; ${breaker.postponed} deliveries postponed`;
      badges.push(html('span', { class: `state breaker ${breaker.state}`, title }, `breaker ${breaker.state.replace('_', '-')}`));
    }
    if (breaker.paused) badges.push(html('span', { class: 'state breaker paused', title: 'paused by hand' }, 'paused'));
    return badges;
  }

  function actorRow(actor, perSecond) {
    const name = html('span', { class: 'actor-name' }, label(actor.name));
    const first = cell('name', name);
    if (actor.last_error) {
      first.append(html('span', { class: 'actor-error', title: actor.last_error }, actor.last_error));
    }
    const avg = actor.handling_count ? actor.handling_seconds_sum / actor.handling_count : null;
    return html(
      'tr',
      { 'data-actor': actor.name, 'data-state': actor.state },
      first,
      cell('', html('span', { class: `state ${actor.state}` }, actor.state), ...stalledBadge(actor), ...switches(actor.breaker)),
      cell(`num${perSecond > 0 ? '' : ' zero'}`, rate(perSecond)),
      numberCell(actor.handled_ok),
      numberCell(actor.retried, 'warm'),
      numberCell(actor.parked, 'hot'),
      numberCell(actor.restarts, 'warm'),
      numberCell(actor.in_flight),
      numberCell(actor.backlog, actor.backlog > 100 ? 'warm' : ''),
      cell(`num${avg == null ? ' zero' : ''}`, duration(avg)),
      cell('chart-col', sparkline(actor)),
    );
  }

  /** Handled per second (line), failures (bars), backlog (shaded) and restarts (marks) over the last minutes. */
  function sparkline(actor) {
    const { width: W, height: H, pad } = SPARK;
    const h = actor.history;
    const n = h.ok.length;
    const step = W / Math.max(n, 1);
    const okRate = h.ok.map((v) => v / h.slot_seconds);
    const failRate = h.failed.map((v) => v / h.slot_seconds);
    const top = Math.max(0.2, ...okRate, ...failRate);
    const y = (v) => H - pad - (v / top) * (H - 2 * pad);
    const backlogs = h.backlog.filter((b) => b != null);
    const backlogTop = Math.max(1, ...backlogs);
    const gradient = `fill-${actor.name}`;
    const chart = svg('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' });
    chart.append(
      svg('defs', {}, svg('linearGradient', { id: gradient, x1: 0, x2: 0, y1: 0, y2: 1 },
        svg('stop', { offset: '0%', class: 'stop-top' }),
        svg('stop', { offset: '100%', class: 'stop-bottom' }))),
      svg('line', { x1: 0, x2: W, y1: H - pad + 0.5, y2: H - pad + 0.5, class: 'base' }),
    );
    h.backlog.forEach((b, i) => {
      if (!b) return;
      const height = (b / backlogTop) * (H - 2 * pad) * 0.6;
      chart.append(svg('rect', { x: i * step, y: H - pad - height, width: step, height, class: 'backlog' }));
    });
    const points = okRate.map((v, i) => [i * step + step / 2, y(v)]);
    const line = points.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
    if (points.length) {
      const last = points[points.length - 1][0];
      chart.append(
        svg('path', { d: `${line}L${last.toFixed(1)},${H - pad}L${points[0][0].toFixed(1)},${H - pad}Z`, fill: `url(#${gradient})` }),
        svg('path', { d: line, class: 'line' }),
      );
    }
    failRate.forEach((v, i) => {
      if (!v) return;
      const barTop = Math.min(y(v), H - pad - 2);
      chart.append(svg('rect', { x: i * step + step * 0.2, y: barTop, width: step * 0.6, height: H - pad - barTop, rx: 1, class: 'fail' }));
    });
    h.restarts.forEach((r, i) => {
      if (!r) return;
      const x = i * step + step / 2;
      chart.append(
        svg('line', { x1: x, x2: x, y1: 4, y2: H - pad, class: 'restart' }),
        svg('circle', { cx: x, cy: 4, r: 2.6, class: 'restart-dot' }),
      );
    });
    const sum = (xs) => xs.reduce((a, b) => a + b, 0);
    const minutes = Math.round((n * h.slot_seconds) / 60);
    chart.append(svg('title', {}, `last ${minutes} min: ${sum(h.ok)} handled, ${sum(h.failed)} failed, ` +
      `${sum(h.restarts)} restarts, backlog up to ${backlogs.length ? Math.max(...backlogs) : 'n/a'}`));
    return chart;
  }

  function renderActors(actors) {
    const now = performance.now();
    // The server lists the actors in the order work flows (relay, reader, then
    // the workers as registered), so the table reads like the pipeline.
    const rates = new Map(actors.map((a) => [a.name, rateOf(a, now)]));
    document.getElementById('actor-rows').replaceChildren(...actors.map((a) => actorRow(a, rates.get(a.name))));
    renderPipeline(actors, rates);
  }

  function renderPipeline(actors, rates) {
    const byName = new Map(actors.map((a) => [a.name, a]));
    const reader = byName.get('queue_reader') || {};
    const relay = byName.get('relay') || {};
    const figures = reader.reader || {};
    const transport = reader.transport || {};
    setText('p-outbox', count(relay.backlog), relay.backlog > 100 ? 'warn' : '');
    setText('p-pending', count(reader.backlog), reader.backlog > 1000 ? 'warn' : '');
    const age = figures.oldest_unacked_seconds;
    setText('p-unacked', age ? duration(age) : '0 s', age > 30 ? 'bad' : age > 5 ? 'warn' : '');
    setText('p-parked', count(transport.parked_messages), transport.parked_messages > 0 ? 'bad' : '');
    setText('p-deliveries', count(figures.deliveries));
    setText('p-redeliveries', count(figures.redeliveries), figures.redeliveries > 0 ? 'warn' : '');
    const workers = actors.filter((a) => a.role === 'worker');
    setText('p-rate', rate(workers.reduce((sum, w) => sum + (rates.get(w.name) || 0), 0)));
    const restarts = actors.reduce((sum, a) => sum + a.restarts, 0);
    setText('p-restarts', count(restarts), restarts > 0 ? 'warn' : '');
    const broker = transport.connected ? (transport.node ? `broker ${transport.node}` : 'broker connected') : 'broker disconnected';
    pill('broker', broker, transport.connected ? 'good' : 'bad');
    pill('consumers', transport.consuming ? 'consumers attached' : 'consumers stopped', transport.consuming ? 'good' : 'bad');
  }

  // ---------- tag cloud

  function measure(text, size) {
    if (!seen.measure) seen.measure = document.createElement('canvas').getContext('2d');
    seen.measure.font = `650 ${size}px ${FONT}`;
    return seen.measure.measureText(text).width;
  }

  const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

  /** The first free spot on a spiral out from the centre, stretched to the cloud's shape. */
  function findSpot(w, h, placed) {
    const { width: W, height: H, margin: m } = CLOUD;
    const stretch = W / H;
    for (let t = 0; t < 3000; t++) {
      const angle = t * 0.12;
      const radius = angle * 1.6;
      const cx = W / 2 + Math.cos(angle) * radius * stretch * 0.75;
      const cy = H / 2 + Math.sin(angle) * radius;
      const box = { x: cx - w / 2, y: cy - h / 2, w, h };
      if (box.x < m || box.y < m || box.x + w > W - m || box.y + h > H - m) {
        if (radius > W) return null;
        continue;
      }
      if (!placed.some((p) => overlaps(p.box, box))) return { cx, cy, box };
    }
    return null;
  }

  /** Places the most used tags first, in the middle; shrinks everything until all fit. */
  function layoutCloud(tags) {
    const counts = tags.map((t) => t.posts_count);
    const lo = Math.min(...counts);
    const hi = Math.max(...counts);
    let placed = [];
    for (let scale = 1; scale > 0.25; scale *= 0.88) {
      placed = [];
      for (const [i, t] of tags.entries()) {
        const weight = hi === lo ? 0.5 : (t.posts_count - lo) / (hi - lo);
        const size = Math.max(10, (CLOUD.minFont + Math.sqrt(weight) * (CLOUD.maxFont - CLOUD.minFont)) * scale);
        const w = measure(t.tag, size) + size * 0.3;
        const h = size * 1.08;
        const spot = findSpot(w, h, placed);
        if (!spot) break;
        placed.push({ ...spot, size, weight, tag: t.tag, count: t.posts_count, color: PALETTE[i % PALETTE.length] });
      }
      if (placed.length === tags.length) break;
    }
    return placed;
  }

  function renderCloud(tags) {
    const key = JSON.stringify(tags);
    if (key === seen.cloudKey) return;
    seen.cloudKey = key;
    const cloud = document.getElementById('cloud');
    document.getElementById('cloud-empty').hidden = tags.length > 0;
    const posts = tags.reduce((sum, t) => sum + t.posts_count, 0);
    document.getElementById('cloud-caption').textContent = tags.length
      ? `${tags.length} tag${tags.length === 1 ? '' : 's'} · ${posts} tagging${posts === 1 ? '' : 's'} · size = posts`
      : '';
    const words = tags.length ? layoutCloud(tags) : [];
    cloud.replaceChildren(...words.map((w) => svg(
      'text',
      {
        x: w.cx.toFixed(1),
        y: w.cy.toFixed(1),
        'font-size': w.size.toFixed(1),
        'text-anchor': 'middle',
        'dominant-baseline': 'central',
        class: 'tag',
        'data-tag': w.tag,
        'data-posts': w.count,
        // Attributes, not a style: the page's CSP allows no inline styles.
        fill: w.color,
        'fill-opacity': (0.72 + 0.28 * w.weight).toFixed(2),
      },
      w.tag,
      svg('title', {}, `${w.tag}: ${w.count} post${w.count === 1 ? '' : 's'}`),
    )));
  }

  // ---------- polling

  async function refreshActors() {
    try {
      renderActors(await getJson('/actors'));
      document.getElementById('app').dataset.state = 'live';
      document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      pill('broker', 'service unreachable', 'bad');
      document.getElementById('updated').textContent = String(err.message || err);
    }
  }

  async function refreshTags() {
    try {
      renderCloud(await getJson(`/tags?limit=${CLOUD.limit}`));
      document.getElementById('cloud').dataset.loaded = 'true';
    } catch (err) {
      document.getElementById('cloud-caption').textContent = `tags unavailable (${err.message || err})`;
    }
  }

  refreshActors();
  refreshTags();
  setInterval(refreshActors, ACTORS_EVERY_MS);
  setInterval(refreshTags, TAGS_EVERY_MS);
})();
