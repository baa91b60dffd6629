#include "report/assets.h"

namespace fetafix::report::assets {

const char* const kErrorProbe = R"JS(
window.__fetafixErrors = [];
window.addEventListener('error', function (e) { window.__fetafixErrors.push(String(e.message || e)); });
)JS";

const char* const kStyle = R"CSS(
:root {
  --bg: #f4f6f9; --card: #ffffff; --ink: #1c2430; --muted: #5d6b7e; --line: #e2e7ee; --soft: #f7f9fc;
  --accent: #4453d6; --accent-soft: #e9ecfd;
  --src: #2563eb; --src-soft: #e8f0fe; --tgt: #c2410c; --tgt-soft: #fff1e8;
  --bad: #d03535; --bad-soft: #fdecec; --good: #16803c; --good-soft: #e6f6ec;
  --warn: #b7791f; --warn-soft: #fdf5e2; --grey-soft: #eef1f5;
  --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html { scroll-behavior: smooth; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "DejaVu Sans", Arial, sans-serif;
  -webkit-font-smoothing: antialiased; }
header.top { background: linear-gradient(120deg, #1f2a44 0%, #2c3a66 60%, #3a4aa0 100%); color: #fff; padding: 28px 0 22px; }
.wrap { max-width: 1180px; margin: 0 auto; padding: 0 28px; }
header.top h1 { margin: 0 0 6px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header.top .sub { color: #c9d2f0; font-size: 14px; }
header.top .models { margin-top: 14px; display: flex; flex-wrap: wrap; gap: 10px; }
.model-chip { background: rgba(255,255,255,0.1); border: 1px solid rgba(255,255,255,0.18); border-radius: 10px;
  padding: 8px 12px; font-size: 13px; max-width: 100%; }
.model-chip b { display: block; font-size: 11px; letter-spacing: 0.08em; text-transform: uppercase; color: #aeb9e6; font-weight: 600; }
.model-chip code { color: #fff; word-break: break-all; }
nav.toc { position: sticky; top: 0; z-index: 5; background: rgba(255,255,255,0.94); border-bottom: 1px solid var(--line);
  backdrop-filter: blur(6px); }
nav.toc .wrap { display: flex; gap: 4px; overflow-x: auto; padding-top: 8px; padding-bottom: 8px; }
nav.toc a { color: var(--muted); text-decoration: none; padding: 5px 12px; border-radius: 999px; font-size: 13.5px; white-space: nowrap; }
nav.toc a:hover { background: var(--accent-soft); color: var(--accent); }
main { padding: 22px 0 60px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 14px; padding: 22px 24px 24px;
  margin-bottom: 22px; box-shadow: 0 1px 2px rgba(20,30,60,0.04); }
/* Sections and findings far below the fold are not laid out until scrolled to: a report of a
   ResNet101-sized repair opens in half the time. */
section { content-visibility: auto; contain-intrinsic-size: auto 1200px; }
details.finding { content-visibility: auto; contain-intrinsic-size: auto 64px; }
section > h2 { margin: 0 0 4px; font-size: 19px; font-weight: 650; letter-spacing: -0.005em; }
section > p.lead { margin: 0 0 16px; color: var(--muted); font-size: 14px; }
h3 { font-size: 15px; margin: 20px 0 8px; font-weight: 650; }
a { color: var(--accent); }
code, .mono { font-family: var(--mono); font-size: 12.5px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; margin-bottom: 6px; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 12px; padding: 14px 16px; }
.card .k { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.06em; font-weight: 600; }
.card .v { font-size: 26px; font-weight: 680; margin-top: 2px; letter-spacing: -0.01em; font-variant-numeric: tabular-nums; }
.card .d { font-size: 13px; color: var(--muted); }
.card.bad .v { color: var(--bad); } .card.good .v { color: var(--good); } .card.accent .v { color: var(--accent); }
.status { display: inline-flex; align-items: center; gap: 8px; padding: 6px 14px; border-radius: 999px; font-weight: 600; font-size: 14px; }
.status.ok { background: var(--good-soft); color: var(--good); }
.status.partial { background: var(--warn-soft); color: var(--warn); }
.status.fail { background: var(--bad-soft); color: var(--bad); }
.status .code { font-family: var(--mono); font-size: 12px; opacity: 0.8; }
.meta { color: var(--muted); font-size: 13.5px; margin: 8px 0 16px; display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.05em; font-weight: 600; background: var(--soft); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.nowrap { white-space: nowrap; }
tbody tr:hover { background: #fafbfe; }
.table-scroll { overflow-x: auto; }
.badge { display: inline-block; font-size: 11.5px; font-weight: 650; padding: 1px 8px; border-radius: 999px; line-height: 18px;
  white-space: nowrap; letter-spacing: 0.02em; }
.b-PP { background: #efe7fd; color: #6b35c9; } .b-ID { background: #e3f3fb; color: #0f6e95; }
.b-TSS { background: #e4f6f3; color: #0f766e; } .b-WB { background: #fdebd9; color: #b45309; }
.b-LH { background: #fde7f3; color: #b0226e; } .b-CG { background: #e7ecfb; color: #3348b5; }
.b-JOINT { background: #eef0f3; color: #374151; }
.b-kept, .b-equivalent { background: var(--good-soft); color: var(--good); }
.b-rejected, .b-divergent { background: var(--bad-soft); color: var(--bad); }
.b-screened { background: var(--warn-soft); color: var(--warn); }
.b-round { background: var(--grey-soft); color: var(--muted); }
h3.round { display: flex; gap: 10px; align-items: baseline; } h3.round .muted { font-weight: 400; font-size: 0.85em; }
.b-not_tried, .b-not_checked { background: var(--grey-soft); color: var(--muted); }
.b-fault { background: var(--bad); color: #fff; } .b-harmless { background: var(--good); color: #fff; }
.b-rank { background: var(--accent-soft); color: var(--accent); }
.b-fixed { background: var(--good-soft); color: var(--good); } .b-still { background: var(--warn-soft); color: var(--warn); }
.b-new { background: var(--bad-soft); color: var(--bad); }
.grid2 { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 24px; align-items: start; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
svg.chart { max-width: 100%; height: auto; display: block; font-family: inherit; }
svg.chart .grid { stroke: #e6eaf0; stroke-width: 1; }
svg.chart .axis { stroke: #9aa6b6; stroke-width: 1; }
svg.chart .tick { fill: var(--muted); font-size: 11.5px; }
svg.chart .tick.strong { fill: var(--ink); font-weight: 600; }
svg.chart .axis-label { fill: var(--muted); font-size: 12px; }
svg.chart .label { fill: var(--ink); font-size: 12px; font-family: var(--mono); }
svg.chart a .label { fill: var(--accent); }
svg.chart .value { fill: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
svg.chart .track { fill: #f1f3f7; }
svg.chart .series { fill: none; stroke: var(--accent); stroke-width: 2.5; stroke-linejoin: round; }
svg.chart .area { fill: var(--accent); opacity: 0.09; }
svg.chart .point { fill: #fff; stroke: var(--accent); stroke-width: 2.5; }
svg.chart .bar { fill: #8f9bb3; }
svg.chart .bar.fault { fill: var(--bad); } svg.chart .bar.plain { fill: #7c8cc9; }
svg.chart .bar.harmless { fill: #6cc08b; } svg.chart .bar.skipped { fill: #c6ccd6; }
svg.chart .bar.s-localized { fill: #8a98d8; } svg.chart .bar.s-tried { fill: #e3a84f; } svg.chart .bar.s-kept { fill: #2f9e5b; }
svg.chart .bar.phase { fill: #8a98d8; }
.filters { display: flex; flex-wrap: wrap; gap: 6px; margin: 0 0 14px; }
.filters button { font: inherit; font-size: 13px; border: 1px solid var(--line); background: #fff; color: var(--ink);
  padding: 4px 12px; border-radius: 999px; cursor: pointer; }
.filters button.on { background: var(--accent); border-color: var(--accent); color: #fff; }
.filters .count { opacity: 0.7; margin-left: 4px; font-variant-numeric: tabular-nums; }
details.finding { border: 1px solid var(--line); border-radius: 12px; margin-bottom: 12px; background: #fff; overflow: hidden; }
details.finding[hidden] { display: none; }
details.finding > summary { list-style: none; cursor: pointer; padding: 11px 16px; display: flex; gap: 8px; align-items: baseline;
  flex-wrap: wrap; background: var(--soft); }
details.finding > summary::-webkit-details-marker { display: none; }
details.finding > summary::before { content: "▸"; color: var(--muted); width: 12px; display: inline-block; }
details.finding[open] > summary::before { content: "▾"; }
details.finding[open] > summary { border-bottom: 1px solid var(--line); }
details.finding .idx { color: var(--muted); font-variant-numeric: tabular-nums; font-size: 13px; min-width: 28px; }
details.finding .text { flex: 1 1 420px; min-width: 0; font-size: 14px; }
details.finding .body { padding: 14px 16px 16px; }
details.finding.fault { border-left: 4px solid var(--bad); } details.finding.harmless { border-left: 4px solid var(--good); }
.reason { font-size: 13px; color: var(--muted); margin: 0 0 10px; }
table.sbs { table-layout: fixed; font-size: 13px; }
table.sbs th.side-s { color: var(--src); background: var(--src-soft); }
table.sbs th.side-t { color: var(--tgt); background: var(--tgt-soft); }
table.sbs th.mid, table.sbs td.mid { width: 108px; text-align: center; }
table.sbs td { border-bottom: 1px solid #eef1f5; padding: 6px 8px; }
table.sbs td.mid { color: var(--muted); font-size: 11.5px; vertical-align: middle; }
table.sbs td.mid .link { display: block; font-size: 16px; line-height: 1; color: #9aa6b6; }
table.sbs tr.matched td.mid .link { color: var(--accent); }
.node { border: 1px solid var(--line); border-radius: 9px; padding: 6px 9px; background: #fff; }
.node .op { font-weight: 650; font-size: 13px; }
.node .nm { font-family: var(--mono); font-size: 11.5px; color: var(--muted); word-break: break-all; margin-left: 6px; }
.node.core .op::after { content: "core"; font-size: 10px; font-weight: 600; color: var(--accent); background: var(--accent-soft);
  border-radius: 5px; padding: 0 5px; margin-left: 6px; vertical-align: 1px; }
.node.focus { box-shadow: 0 0 0 2px var(--accent); border-color: transparent; }
.node.unmatched { border-style: dashed; border-color: var(--bad); }
.node .attrs, .node .ws { display: flex; flex-wrap: wrap; gap: 3px 5px; margin-top: 5px; font-family: var(--mono); font-size: 11.5px; }
.node .a, .node .w { padding: 0 6px; border-radius: 5px; background: #f2f4f8; line-height: 19px; overflow-wrap: anywhere; }
.node .a i, .node .w i { font-style: normal; color: var(--muted); }
.node .w { background: #eef2fb; color: #34405a; }
.node .a.diff { background: #fff0b8; }
.node .a.diff.fault, .node .w.diff { background: var(--bad-soft); color: var(--bad); font-weight: 600; }
.node .a.absent { font-style: italic; }
tr.source-only td.cell-t, tr.target-only td.cell-s {
  background: repeating-linear-gradient(135deg, #f6f7fa, #f6f7fa 6px, #eef0f4 6px, #eef0f4 12px); }
tr.source-only td.mid { color: var(--src); font-weight: 600; } tr.target-only td.mid { color: var(--tgt); font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; font-size: 12.5px; color: var(--muted); margin: 0 0 14px; }
.legend span.sw { display: inline-block; width: 14px; height: 14px; border-radius: 4px; vertical-align: -2px; margin-right: 5px; border: 1px solid var(--line); }
pre.evidence { background: #0f1729; color: #d7def0; border-radius: 9px; padding: 12px 14px; overflow: auto; max-height: 320px;
  font-size: 12px; margin: 10px 0 0; }
details.more > summary { cursor: pointer; color: var(--accent); font-size: 13px; margin-top: 10px; }
.thumb { width: 96px; height: 72px; object-fit: cover; border-radius: 7px; display: block; background: #e9edf3; }
ol.topk { margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 1px 10px; max-width: 230px;
  font-variant-numeric: tabular-nums; font-size: 12px; color: var(--muted); }
ol.topk li:first-child { flex-basis: 100%; font-size: 15px; font-weight: 650; color: var(--ink); }
ol.topk li.hit { color: var(--good); font-weight: 650; }
ol.topk li.miss:first-child { color: var(--bad); }
ol.topk .sc { color: var(--muted); font-size: 11px; margin-left: 4px; font-weight: 400; }
.file { font-family: var(--mono); font-size: 12px; word-break: break-all; }
ul.patch { list-style: none; margin: 0; padding: 0; }
ul.patch li { padding: 8px 10px; border-bottom: 1px solid var(--line); display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
ul.patch .kind { font-family: var(--mono); font-size: 11.5px; background: var(--accent-soft); color: var(--accent); border-radius: 6px;
  padding: 1px 7px; min-width: 120px; text-align: center; }
ul.patch .what { font-family: var(--mono); font-size: 12.5px; word-break: break-all; }
ul.patch .delta { color: var(--muted); font-size: 12.5px; }
.muted { color: var(--muted); }
.note { background: var(--warn-soft); border: 1px solid #f1dfb5; color: #7a5410; border-radius: 9px; padding: 8px 12px; font-size: 13.5px; margin: 8px 0; }
footer { color: var(--muted); font-size: 12.5px; text-align: center; padding: 10px 0 30px; }
#render-check { display: none; }
)CSS";

const char* const kScript = R"JS(
(function () {
  var cards = Array.prototype.slice.call(document.querySelectorAll('details.finding'));
  var state = { kind: 'all' };
  function matches(card, key) {
    if (key === 'all') return true;
    var parts = key.split(':');
    return (card.getAttribute('data-' + parts[0]) || '') === parts[1];
  }
  function apply(key) {
    state.kind = key;
    cards.forEach(function (c) { c.hidden = !matches(c, key); });
    document.querySelectorAll('.filters button').forEach(function (b) {
      b.classList.toggle('on', b.getAttribute('data-filter') === key);
    });
  }
  document.querySelectorAll('.filters button').forEach(function (b) {
    var key = b.getAttribute('data-filter');
    var n = cards.filter(function (c) { return matches(c, key); }).length;
    var span = document.createElement('span');
    span.className = 'count';
    span.textContent = String(n);
    b.appendChild(span);
    b.addEventListener('click', function () { apply(key); });
  });
  // Opening a finding from a link (the ranking, the history) unfolds it.
  function openTarget() {
    var id = decodeURIComponent((location.hash || '').slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === 'DETAILS') { el.hidden = false; el.open = true; }
  }
  window.addEventListener('hashchange', openTarget);
  openTarget();

  var mark = document.getElementById('render-check');
  function record(status) {
    var errors = (window.__fetafixErrors || []).length;
    mark.setAttribute('data-errors', String(errors));
    mark.setAttribute('data-error-messages', (window.__fetafixErrors || []).join(' | '));
    mark.setAttribute('data-sections', String(document.querySelectorAll('section[data-section]').length));
    mark.setAttribute('data-findings', String(cards.length));
    mark.setAttribute('data-svg', String(document.querySelectorAll('svg.chart').length));
    mark.setAttribute('data-images', String(document.querySelectorAll('img.thumb').length));
    var broken = 0;
    document.querySelectorAll('img.thumb').forEach(function (img) { if (img.complete && img.naturalWidth === 0) broken++; });
    mark.setAttribute('data-broken-images', String(broken));
    mark.setAttribute('data-status', errors === 0 ? status : 'error');
  }
  record('scripted');
  window.addEventListener('load', function () {
    mark.setAttribute('data-load-ms', String(Math.round(performance.now())));
    record('loaded');
  });
})();
)JS";

}  // namespace fetafix::report::assets
