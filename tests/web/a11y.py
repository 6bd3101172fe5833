"""Accessibility checks run inside the page: every control has a name, and text has readable contrast
(WCAG 2 AA: 4.5:1, or 3:1 for large text), computed from the rendered colours."""

from __future__ import annotations

from playwright.async_api import Page

UNNAMED_CONTROLS = """() => [...document.querySelectorAll("input, textarea, select, button, a[href]")]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => {
    const name = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
      || (el.labels && el.labels.length ? el.labels[0].textContent.trim() : "")
      || (["BUTTON", "A"].includes(el.tagName) ? el.textContent.trim() : "");
    return !name;
  })
  .map((el) => el.outerHTML.slice(0, 100))"""

LOW_CONTRAST_TEXT = """() => {
  const parse = (colour) => {
    const parts = colour.match(/[\\d.]+/g).map(Number);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const luminance = ({ r, g, b }) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const backdrop = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const colour = parse(getComputedStyle(e).backgroundColor);
      if (colour.a > 0) layers.push(colour);
      if (colour.a === 1) break;
    }
    return layers.reverse().reduce((bottom, top) => over(top, bottom), { r: 255, g: 255, b: 255, a: 1 });
  };
  const failures = [];
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
    if (!text || el.getClientRects().length === 0 || el.closest(":disabled")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden") continue;
    const background = backdrop(el);
    const foreground = over(parse(style.color), background);
    const [light, dark] = [luminance(foreground), luminance(background)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) failures.push(`${text.slice(0, 40)}: ${ratio.toFixed(2)}`);
  }
  return failures;
}"""


async def unnamed_controls(page: Page) -> list[str]:
    found: list[str] = await page.evaluate(UNNAMED_CONTROLS)
    return found


async def low_contrast_text(page: Page) -> list[str]:
    found: list[str] = await page.evaluate(LOW_CONTRAST_TEXT)
    return found
