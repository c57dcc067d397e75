"""Accessibility checks in the browser tests: axe-core (tests/vendor/axe-core,
MPL-2.0) run in the page against WCAG 2.2 levels A and AA.

The script is evaluated through the browser's debugging protocol, which a
page's Content-Security-Policy does not apply to: the pages keep their
real policy while they are checked, so a check can't pass only because a
test loosened it.
"""

from __future__ import annotations

import json
from pathlib import Path

from playwright.async_api import Page

AXE = (Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


async def violations(page: Page) -> list[dict]:
    """What axe finds wrong with the page as it is now: each rule with its
    impact, help and the elements it failed on."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE)
    found = await page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)})))",
        TAGS,
    )
    return found


async def check(page: Page, name: str) -> None:
    """Fail the test, naming the page and each problem, if axe finds any."""
    found = await violations(page)
    assert not found, f"{name}: {len(found)} accessibility violations:\n" + json.dumps(found, indent=2)
