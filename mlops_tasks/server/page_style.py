"""The dashboard's style sheet, served at ``page.STYLE_PATH``: light and dark themes from
``prefers-color-scheme``, the system font stack (no web font), colours for the charts' classes."""

STYLE = """\
:root {
  --bg: #f6f7f9; --fg: #1d2330; --muted: #5b6475; --card: #ffffff; --line: #d9dde5;
  --accent: #2458c6; --threshold: #c0392b; --ok: #1e7d45; --warn: #a86400; --bad: #c0392b;
  --unknown: #6b7280; --labeled: #2458c6; --unlabeled: #9db6e8; --fpr: #c0392b;
  --confidence: #7a4cc2; --decision: #1d2330; --tuned: #1e7d45; --rollback: #d35400;
  --manual: #6b7280; --firing: #c0392b; --resolved: #8f9bb3; --event: #2458c6;
  --silence: rgba(107, 114, 128, 0.22);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12151c; --fg: #e6e9ef; --muted: #9aa3b5; --card: #1b2029; --line: #2f3643;
    --accent: #7aa5ff; --threshold: #ff7b6b; --ok: #4cc38a; --warn: #f0b429; --bad: #ff7b6b;
    --unknown: #9aa3b5; --labeled: #7aa5ff; --unlabeled: #3b5386; --fpr: #ff7b6b;
    --confidence: #c4a2ff; --decision: #e6e9ef; --tuned: #4cc38a; --rollback: #ffa657;
    --manual: #9aa3b5; --firing: #ff7b6b; --resolved: #6b7791; --event: #7aa5ff;
    --silence: rgba(154, 163, 181, 0.22);
  }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px 40px; background: var(--bg); color: var(--fg);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--accent); }
h1 { font-size: 20px; margin: 0 16px 0 0; display: inline-block; }
h2 { font-size: 16px; margin: 0; }
h3 { font-size: 12px; margin: 0 0 6px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.top { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 16px; margin-bottom: 12px; }
.top nav a { margin-right: 8px; padding: 2px 8px; border-radius: 10px; text-decoration: none;
  border: 1px solid var(--line); }
.top nav a[aria-current] { background: var(--accent); color: var(--card);
  border-color: var(--accent); }
.meta, .sub, .detail, figcaption { color: var(--muted); font-size: 12px; margin: 0; }
.system { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 10px;
  margin-bottom: 16px; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 12px; }
.panel p { margin: 2px 0; }
.panel.bad { border-color: var(--bad); }
.panel.jobs { grid-column: span 2; }
p.ok { color: var(--ok); font-weight: 600; } p.bad { color: var(--bad); font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { text-align: left; padding: 1px 6px 1px 0; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 500; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 14px; }
.badges { margin: 6px 0 0; display: flex; flex-wrap: wrap; gap: 6px; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; border: 1px solid currentColor; }
.badge.ok { color: var(--ok); } .badge.warn { color: var(--warn); }
.badge.bad { color: var(--bad); } .badge.unknown { color: var(--unknown); }
.stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: 6px 12px; margin: 10px 0; }
.stats dt { color: var(--muted); font-size: 11px; }
.stats dd { margin: 0; font-weight: 600; }
.stats .detail { display: block; font-weight: 400; }
.charts figure { margin: 8px 0 0; }
.legend { float: right; }
.key { margin-left: 8px; }
.key::before { content: ""; display: inline-block; width: 10px; height: 3px; margin-right: 4px;
  vertical-align: middle; background: var(--muted); }
.key.accuracy::before { background: var(--accent); }
.key.threshold::before { background: var(--threshold); }
.key.labeled::before { background: var(--labeled); height: 8px; }
.key.unlabeled::before { background: var(--unlabeled); height: 8px; }
.key.fpr::before { background: var(--fpr); }
.key.confidence::before { background: var(--confidence); }
.key.tuned::before { background: var(--tuned); height: 8px; width: 8px; border-radius: 50%; }
.key.rollback::before { background: var(--rollback); height: 8px; width: 8px; border-radius: 50%; }
.key.manual::before { background: var(--manual); height: 8px; width: 8px; border-radius: 50%; }
.key.firing::before { background: var(--firing); height: 8px; }
.key.resolved::before { background: var(--resolved); height: 8px; }
.key.event::before { background: var(--event); height: 8px; width: 3px; }
.key.silence::before { background: var(--silence); height: 8px; }
svg.chart { display: block; width: 100%; height: auto; overflow: visible; }
.chart .grid { stroke: var(--line); stroke-width: .6; }
.chart .tick, .chart .lane, .chart .empty { fill: var(--muted); font-size: 8px; }
.chart .line, .chart .step { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
.chart .line.accuracy { stroke: var(--accent); }
.chart .dot.accuracy { fill: var(--accent); }
.chart .step.threshold { stroke: var(--threshold); stroke-dasharray: 4 3; }
.chart .line.fpr { stroke: var(--fpr); } .chart .dot.fpr { fill: var(--fpr); }
.chart .line.confidence { stroke: var(--confidence); }
.chart .dot.confidence { fill: var(--confidence); }
.chart .step.decision { stroke: var(--decision); }
.chart .bar.labeled { fill: var(--labeled); } .chart .bar.unlabeled { fill: var(--unlabeled); }
.chart .marker.tuned circle { fill: var(--tuned); }
.chart .marker.rollback circle { fill: var(--rollback); }
.chart .marker.manual circle { fill: var(--manual); }
.chart .marker circle { stroke: var(--card); stroke-width: 1; }
.chart .band.firing { fill: var(--firing); } .chart .band.resolved { fill: var(--resolved); }
.chart .band.event { fill: var(--event); } .chart .band.silence { fill: var(--silence); }
.chart .band.silenced { fill-opacity: .45; }
details { margin-top: 8px; font-size: 12px; }
details pre { margin: 4px 0 0; padding: 6px 8px; background: var(--bg); border-radius: 6px;
  overflow-x: auto; }
.empty { color: var(--muted); }
"""
