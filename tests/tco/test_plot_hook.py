"""The Pareto chart as an SVG string for other reports (the compare HTML report embeds it)."""

import xml.etree.ElementTree as ET

from ponder.bench.html import render_html
from ponder.tco import pareto_svg

NS = "{http://www.w3.org/2000/svg}"


def test_pareto_svg_one_curve_per_model_and_gpu():
    svg = pareto_svg(["glm-4.7", "kimi-k2.5"], ["h200", "b200"], precision="int4", prompt=2048, output=512,
                     users=[1, 8, 64])
    root = ET.fromstring(svg)
    assert len(root.findall(f".//{NS}polyline")) == 4
    labels = " ".join(t.text or "" for t in root.iter(f"{NS}text"))
    assert "glm-4.7 int4 8xh200" in labels and "kimi-k2.5 int4 8xb200" in labels


def test_compare_report_embeds_the_chart():
    svg = pareto_svg(["glm-4.7"], ["h200"], users=[1, 8])
    page = render_html([], "cmp1", tco_svg=svg)
    assert "Serving cost (ponder tco)" in page and svg in page
    assert "Serving cost" not in render_html([], "cmp1")
