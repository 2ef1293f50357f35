/*
 * report_assets.c — the style sheet and the script inlined into every `strata report` page.
 *
 * The script does two things, both after the page has loaded:
 *   - zoom: a click on a frame of the flame graph widens it to the whole width (its callers stay
 *     above it at full width, everything else is hidden); a click on the top bar zooms out.
 *     "#zoom=N" in the address zooms on the Nth frame (document order) at load.
 *   - self-check: for each chart (svg[data-chart]) it counts the data marks (class "d") the
 *     browser laid out with a non-empty box, and the points of its polylines, and writes them
 *     to data-drawn / data-drawn-points beside the counts strata wrote (data-marks, data-points);
 *     <body data-drawn="heap=2 sites=14 ..."> sums it up (a "!" after a chart that differs), and
 *     data-script="ok" says the script ran to its end. Headless tests read these back.
 */
#include "report.h"

const char report_css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1000px;"
    "padding:16px 24px 40px;color:#1d1d1f;background:#fff}\n"
    "h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:30px 0 8px;border-bottom:1px solid #ddd;"
    "padding-bottom:4px}\n"
    "code,pre,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}\n"
    "table{border-collapse:collapse}td,th{padding:3px 14px 3px 0;text-align:left;vertical-align:top}"
    "td.n,th.n{text-align:right;white-space:nowrap}table.rows th{border-bottom:1px solid #ccc}\n"
    "table.rows tr:nth-child(even){background:#f7f7f9}\n"
    "nav a{margin-right:14px}\n"
    "svg{width:100%;height:auto;display:block;margin:6px 0}\n"
    "svg .grid{stroke:#e8e8e8}svg .axis{stroke:#999}svg .tick,svg .legend{font-size:11px;fill:#555}\n"
    "svg.flame text{font:11px ui-monospace,Menlo,Consolas,monospace;fill:#1d1d1f;pointer-events:none}\n"
    "svg.flame g.fr{cursor:pointer}svg.flame rect{stroke:#fff;stroke-width:.6}\n"
    "svg.flame g.fr:hover rect{stroke:#000;stroke-width:1}\n"
    ".lost{color:#b00020;font-weight:600}.reachable{color:#7a5c00}\n"
    ".note{background:#fff6e0;border-left:4px solid #e0a000;padding:6px 10px}\n"
    ".misuse{background:#fde8e8;border-left:4px solid #c00;padding:6px 10px}\n"
    "details summary{cursor:pointer}pre{margin:4px 0 4px 14px;white-space:pre-wrap}\n"
    ".muted{color:#6e6e73}.charts{display:grid;grid-template-columns:1fr;gap:8px}\n";

const char report_js[] =
    "(function () {\n"
    "  'use strict';\n"
    "  var W = 960, CHAR_W = 7, each = Array.prototype.forEach;\n"
    "  var frames = Array.prototype.slice.call(document.querySelectorAll('svg.flame g.fr'));\n"
    "  function fit(label, px) {\n"
    "    var n = px > 8 ? Math.floor((px - 6) / CHAR_W) : 0;\n"
    "    if (n >= label.length) return label;\n"
    "    return n >= 4 ? label.slice(0, n - 2) + '..' : '';\n"
    "  }\n"
    "  function place(g, x, w) {\n"
    "    var r = g.querySelector('rect'), t = g.querySelector('text');\n"
    "    g.style.display = '';\n"
    "    r.setAttribute('x', (x * W).toFixed(2));\n"
    "    r.setAttribute('width', (w * W).toFixed(2));\n"
    "    t.setAttribute('x', (x * W + 3).toFixed(2));\n"
    "    t.textContent = fit(g.getAttribute('data-l'), w * W);\n"
    "  }\n"
    "  function zoom(target) {\n"
    "    var x0 = +target.dataset.x, w0 = +target.dataset.w, d0 = +target.dataset.d, eps = 1e-7;\n"
    "    frames.forEach(function (g) {\n"
    "      var x = +g.dataset.x, w = +g.dataset.w, d = +g.dataset.d;\n"
    "      if (d < d0 && x <= x0 + eps && x + w >= x0 + w0 - eps) place(g, 0, 1);\n"
    "      else if (d >= d0 && x >= x0 - eps && x + w <= x0 + w0 + eps) place(g, (x - x0) / w0, w / w0);\n"
    "      else g.style.display = 'none';\n"
    "    });\n"
    "    document.body.setAttribute('data-zoom', target.getAttribute('data-l'));\n"
    "  }\n"
    "  frames.forEach(function (g) { g.addEventListener('click', function () { zoom(g); }); });\n"
    "  var summary = [];\n"
    "  each.call(document.querySelectorAll('svg[data-chart]'), function (svg) {\n"
    "    var marks = 0, points = 0;\n"
    "    each.call(svg.querySelectorAll('.d'), function (e) {\n"
    "      var b = e.getBBox();\n"
    "      if (b.width > 0 || b.height > 0) marks++;\n"
    "      if (e.points) points += e.points.numberOfItems;\n"
    "    });\n"
    "    svg.setAttribute('data-drawn', marks);\n"
    "    svg.setAttribute('data-drawn-points', points);\n"
    "    var same = marks === +svg.dataset.marks && points === +svg.dataset.points;\n"
    "    summary.push(svg.dataset.chart + '=' + marks + (same ? '' : '!'));\n"
    "  });\n"
    "  document.body.setAttribute('data-drawn', summary.join(' '));\n"
    "  var m = /^#zoom=(\\d+)$/.exec(location.hash);\n"
    "  if (m && frames[+m[1]]) zoom(frames[+m[1]]);\n"
    "  document.body.setAttribute('data-script', 'ok');\n"
    "})();\n";
