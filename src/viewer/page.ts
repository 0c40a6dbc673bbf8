// The viewer's single page: plain HTML with inline CSS and JS (no build step).
// It polls /api/traces every 2 s, draws the selected trace's waterfall from
// /api/traces/<id>, and shows a clicked span's details in the side panel.
// All span data is inserted with textContent (span names and attributes come
// from whoever can post to the receiver).
//
// Note: this is a TS template string: the inline JS avoids backticks and
// dollar-brace sequences.

export const VIEWER_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wasmts traces</title>
<style>
  :root {
    --shim: #1f8fd1; --child: #c2418f; --other: #d89b1c; --err: #d33;
    --bg: #fff; --fg: #1d232a; --muted: #6b7580; --line: #e3e7eb; --sel: #eef5fc;
    font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
  }
  * { box-sizing: border-box; }
  body { margin: 0; color: var(--fg); background: var(--bg); height: 100vh; display: flex; flex-direction: column; }
  header { display: flex; gap: 18px; align-items: baseline; padding: 8px 14px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
  header h1 { font-size: 16px; margin: 0; }
  code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f3f5f7; padding: 1px 4px; border-radius: 3px; }
  .muted { color: var(--muted); }
  .legend { display: flex; gap: 12px; align-items: center; }
  .sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 4px; }
  .sw.shim, .bar.shim { background: var(--shim); }
  .sw.child, .bar.child { background: var(--child); }
  .sw.other, .bar.other { background: var(--other); }
  #status { margin-left: auto; }
  #list { max-height: 32vh; overflow: auto; border-bottom: 1px solid var(--line); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { position: sticky; top: 0; background: #f8f9fa; font-weight: 600; }
  #traces tbody tr { cursor: pointer; }
  #traces tbody tr:hover { background: #f6f8fa; }
  #traces tbody tr.selected { background: var(--sel); }
  th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
  #empty { padding: 10px 14px; margin: 0; }
  #main { flex: 1; display: flex; min-height: 0; }
  #detail { flex: 1; overflow: auto; padding: 8px 14px; min-width: 0; }
  #trace-head { margin-bottom: 6px; }
  #trace-head .title { font-weight: 600; font-size: 14px; }
  .row, #axis { display: grid; grid-template-columns: minmax(180px, 32%) 1fr 76px; align-items: center; }
  .row { height: 22px; cursor: pointer; border-bottom: 1px solid #f1f3f5; }
  .row:hover { background: #f6f8fa; }
  .row.selected { background: var(--sel); }
  .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding-right: 8px; }
  .label .orphan { color: var(--other); font-weight: 700; margin-right: 4px; }
  .row.error .label .name { color: var(--err); }
  .outcome { margin-left: 8px; color: var(--muted); font-size: 11px; }
  .outcome.err, td.outcome.err { color: var(--err); }
  .track { position: relative; height: 100%; }
  .bar { position: absolute; top: 5px; height: 12px; min-width: 2px; border-radius: 2px; }
  .row.error .bar { outline: 2px solid var(--err); }
  .evt { position: absolute; top: 3px; width: 2px; height: 16px; background: #222; opacity: .55; }
  .dur { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
  #axis { height: 20px; color: var(--muted); font-size: 11px; border-bottom: 1px solid var(--line); }
  #axis .ticks { position: relative; height: 100%; }
  #axis .tick { position: absolute; top: 2px; transform: translateX(-50%); }
  #axis .tick.first { transform: none; }
  #axis .tick.last { transform: translateX(-100%); }
  #panel { width: 380px; border-left: 1px solid var(--line); overflow: auto; padding: 8px 12px; }
  #panel h2 { font-size: 14px; margin: 4px 0 8px; word-break: break-all; }
  #panel h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 14px 0 4px; }
  #panel table td { white-space: normal; word-break: break-all; vertical-align: top; padding: 2px 6px; }
  #panel td.k { color: var(--muted); width: 40%; }
  #panel .event { margin: 4px 0 8px; }
</style>
</head>
<body>
<header>
  <h1>wasmts traces</h1>
  <span class="muted">OTLP endpoint <code id="endpoint"></code></span>
  <span class="legend" id="legend">
    <span><span class="sw shim"></span>shim</span>
    <span><span class="sw child"></span>wasm child</span>
    <span><span class="sw other"></span>other process</span>
  </span>
  <span id="status" class="muted"></span>
</header>
<section id="list">
  <table id="traces">
    <thead><tr><th>Root span</th><th>Service</th><th class="num">Spans</th><th>Outcome</th><th class="num">Duration</th><th>Started</th><th>Trace id</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="empty" class="muted">No traces yet.</p>
</section>
<div id="main">
  <section id="detail">
    <div id="trace-head" class="muted">Select a trace.</div>
    <div id="axis" hidden></div>
    <div id="waterfall"></div>
  </section>
  <aside id="panel"><p class="muted">Click a span to see its attributes, resource, events and links.</p></aside>
</div>
<script>
(function () {
  'use strict';
  var selectedTrace = null, selectedSpan = null, shownCount = -1, spans = [];
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmtMs(ms) {
    if (!(ms >= 0)) return String(ms);
    if (ms < 0.001) return Math.round(ms * 1e6) + 'ns';
    if (ms < 1) return trim(ms * 1e3) + '\\u00b5s';
    if (ms < 1000) return trim(ms) + 'ms';
    if (ms < 60000) return trim(ms / 1000) + 's';
    var s = Math.round(ms / 1000);
    return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  }
  function trim(v) { return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0); }
  function fmtTime(ms) {
    var d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }
  function show(v) { return typeof v === 'string' ? v : JSON.stringify(v); }

  $('endpoint').textContent = 'OTEL_EXPORTER_OTLP_ENDPOINT=' + location.origin;

  function refreshList() {
    return fetch('/api/traces', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (traces) {
      var body = document.querySelector('#traces tbody');
      body.replaceChildren();
      traces.forEach(function (t) {
        var tr = el('tr');
        tr.dataset.traceId = t.traceId;
        if (t.traceId === selectedTrace) tr.className = 'selected';
        tr.append(
          el('td', 'root', t.rootName || '(unnamed)'),
          el('td', 'service', t.services.join(', ') || t.service || '-'),
          el('td', 'num count', t.spanCount),
          el('td', 'outcome' + (t.errorCount ? ' err' : ''), [t.exitCode !== null ? 'exit ' + t.exitCode : '', t.errorCount ? '\u2717 ' + t.errorCount + ' error' + (t.errorCount === 1 ? '' : 's') : ''].filter(Boolean).join(' \u00b7 ') || 'ok'),
          el('td', 'num', fmtMs(t.durationMs)),
          el('td', '', fmtTime(t.startMs)),
          el('td', 'muted', t.traceId));
        tr.addEventListener('click', function () { selectTrace(t.traceId); });
        body.append(tr);
      });
      $('empty').hidden = traces.length > 0;
      $('status').textContent = traces.length + ' trace' + (traces.length === 1 ? '' : 's') + ' \\u00b7 updated ' + fmtTime(Date.now());
      if (!selectedTrace && traces.length) selectTrace(traces[0].traceId);
      else if (selectedTrace) {
        var cur = traces.find(function (t) { return t.traceId === selectedTrace; });
        if (cur && cur.spanCount !== shownCount) loadTrace();
      }
    }).catch(function (err) {
      $('status').textContent = 'receiver unreachable: ' + err.message;
    });
  }

  function selectTrace(id) {
    selectedTrace = id;
    selectedSpan = null;
    shownCount = -1;
    history.replaceState(null, '', '#trace=' + id);
    document.querySelectorAll('#traces tbody tr').forEach(function (tr) {
      tr.classList.toggle('selected', tr.dataset.traceId === id);
    });
    $('panel').replaceChildren(el('p', 'muted', 'Click a span to see its attributes, resource, events and links.'));
    return loadTrace();
  }

  function loadTrace() {
    var id = selectedTrace;
    return fetch('/api/traces/' + encodeURIComponent(id), { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error('trace ' + id + ' is gone');
      return r.json();
    }).then(function (data) {
      if (id !== selectedTrace) return;
      spans = data;
      shownCount = data.length;
      drawWaterfall();
    }).catch(function (err) {
      $('trace-head').textContent = err.message;
      $('waterfall').replaceChildren();
    });
  }

  function drawWaterfall() {
    var start = Infinity, end = -Infinity;
    spans.forEach(function (s) {
      start = Math.min(start, s.offsetMs);
      end = Math.max(end, s.offsetMs + s.durationMs);
    });
    var total = Math.max(end - start, 1e-6);
    var services = Array.from(new Set(spans.map(function (s) { return s.service; }).filter(Boolean)));
    var head = $('trace-head');
    head.className = '';
    head.replaceChildren(
      el('span', 'title', (spans[0] && spans[0].name) || '(unnamed)'),
      el('span', 'muted', '  trace ' + selectedTrace + ' \\u00b7 ' + spans.length + ' spans \\u00b7 ' + fmtMs(total) +
        (services.length ? ' \\u00b7 ' + services.join(', ') : '')));

    var axis = $('axis');
    axis.hidden = false;
    var ticks = el('div', 'ticks');
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f, i) {
      var t = el('span', 'tick' + (i === 0 ? ' first' : i === 4 ? ' last' : ''), i === 0 ? '0' : fmtMs(total * f));
      t.style.left = (f * 100) + '%';
      ticks.append(t);
    });
    axis.replaceChildren(el('div', 'label', 'span'), ticks, el('div', 'dur', 'duration'));

    var wf = $('waterfall');
    wf.replaceChildren();
    spans.forEach(function (s) {
      var row = el('div', 'row ' + s.process + (s.status.code === 2 ? ' error' : '') + (s.spanId === selectedSpan ? ' selected' : ''));
      row.dataset.spanId = s.spanId;
      row.dataset.process = s.process;
      row.title = s.name + ' \\u2014 ' + (s.processLabel || 'unknown process') + (s.service ? ' \\u00b7 ' + s.service : '');
      var label = el('div', 'label');
      label.style.paddingLeft = (s.depth * 16 + 2) + 'px';
      if (s.orphan) label.append(el('span', 'orphan', '?'));
      label.append(el('span', 'name', s.name || '(unnamed)'));
      if (s.outcome.text) label.append(el('span', 'outcome' + (s.outcome.error ? ' err' : ''), s.outcome.text));
      if (s.orphan) label.title = 'parent span ' + s.parentSpanId + ' not received';
      var track = el('div', 'track');
      var bar = el('div', 'bar ' + s.process);
      bar.style.left = ((s.offsetMs - start) / total * 100) + '%';
      bar.style.width = Math.max(s.durationMs / total * 100, 0.2) + '%';
      track.append(bar);
      s.events.forEach(function (e) {
        var m = el('div', 'evt');
        m.style.left = ((e.offsetMs - start) / total * 100) + '%';
        m.title = e.name;
        track.append(m);
      });
      row.append(label, track, el('div', 'dur', fmtMs(s.durationMs)));
      row.addEventListener('click', function () { showSpan(s); });
      wf.append(row);
    });
    if (selectedSpan) {
      var again = spans.find(function (s) { return s.spanId === selectedSpan; });
      if (again) showSpan(again);
    }
  }

  function kvTable(obj, cls, keepOrder) {
    var keys = Object.keys(obj || {});
    if (!keys.length) return el('p', 'muted', 'none');
    var t = el('table', cls);
    if (!keepOrder) keys.sort();
    keys.forEach(function (k) {
      var tr = el('tr');
      tr.dataset.key = k;
      tr.append(el('td', 'k', k), el('td', 'v', show(obj[k])));
      t.append(tr);
    });
    return t;
  }

  function showSpan(s) {
    selectedSpan = s.spanId;
    document.querySelectorAll('#waterfall .row').forEach(function (r) {
      r.classList.toggle('selected', r.dataset.spanId === s.spanId);
    });
    var p = $('panel');
    p.replaceChildren();
    p.dataset.spanId = s.spanId;
    p.append(el('h2', '', s.name || '(unnamed)'));
    p.append(kvTable({
      'span id': s.spanId,
      'parent span id': s.parentSpanId ? s.parentSpanId + (s.orphan ? ' (not received)' : '') : '(root)',
      'trace id': s.traceId,
      'kind': s.kindName,
      'status': s.status.codeName + (s.status.message ? ': ' + s.status.message : ''),
      'exit code': s.outcome.exitCode !== undefined ? String(s.outcome.exitCode) : '-',
      'error.type': s.outcome.errorType || '-',
      'process': s.processLabel || 'unknown',
      'service': s.service || '-',
      'scope': s.scope.name + (s.scope.version ? ' ' + s.scope.version : ''),
      'start': '+' + fmtMs(s.offsetMs) + ' (' + fmtTime(s.startMs) + ')',
      'duration': fmtMs(s.durationMs),
      'received over': s.protocol
    }, 'summary', true));
    p.append(el('h3', '', 'Attributes'), kvTable(s.attributes, 'attributes'));
    p.append(el('h3', '', 'Resource'), kvTable(s.resource, 'resource'));
    p.append(el('h3', '', 'Events'));
    if (!s.events.length) p.append(el('p', 'muted', 'none'));
    s.events.forEach(function (e) {
      var d = el('div', 'event');
      d.append(el('div', '', '+' + fmtMs(e.offsetMs) + '  ' + e.name), kvTable(e.attributes, 'event-attributes'));
      p.append(d);
    });
    p.append(el('h3', '', 'Links'));
    if (!s.links.length) p.append(el('p', 'muted', 'none'));
    s.links.forEach(function (l) {
      var d = el('div', 'event');
      d.append(el('div', '', 'trace ' + l.traceId + ' span ' + l.spanId), kvTable(l.attributes, 'link-attributes'));
      p.append(d);
    });
  }

  var m = /trace=([0-9a-fA-F]{32})/.exec(location.hash);
  if (m) selectTrace(m[1].toLowerCase());
  refreshList();
  setInterval(refreshList, 2000);
})();
</script>
</body>
</html>
`;
