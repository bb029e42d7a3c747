// The forecast chart: expected revenue by month as a line, the P10-P90 range of the
// simulated revenue as a band, revenue already won as bars -- inline SVG, no library.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 860;
  const HEIGHT = 260;
  const MARGIN = { top: 26, right: 14, bottom: 28, left: 64 };

  function node(tag, attributes, text) {
    const item = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes || {})) item.setAttribute(key, value);
    if (text !== undefined) item.textContent = text;
    return item;
  }

  function niceStep(span) {
    const raw = span / 4;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const factor of [1, 2, 2.5, 5, 10]) {
      if (raw <= factor * power) return factor * power;
    }
    return 10 * power;
  }

  function short(value) {
    if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
    if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
    return String(Math.round(value));
  }

  function drawForecast(container, data) {
    const months = data.months;
    const amount = (money) => (money ? Number(money.amount) : null);
    const expected = months.map((m) => amount(m.expected));
    const won = months.map((m) => amount(m.won));
    const low = months.map((m) => amount(m.p10));
    const high = months.map((m) => amount(m.p90));
    const banded = high.every((v) => v !== null) && low.every((v) => v !== null);
    const top = Math.max(1, ...expected, ...(banded ? high : []));
    const step = niceStep(top);
    const ceiling = Math.ceil(top / step) * step;

    const innerWidth = WIDTH - MARGIN.left - MARGIN.right;
    const innerHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
    const slot = innerWidth / months.length;
    const x = (i) => MARGIN.left + slot * (i + 0.5);
    const y = (v) => MARGIN.top + innerHeight * (1 - v / ceiling);

    const svg = node("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
      "aria-label": `Forecast in ${data.currency} by month`,
    });
    for (let v = 0; v <= ceiling + step / 2; v += step) {
      svg.append(node("line", { class: "axis", x1: MARGIN.left, x2: WIDTH - MARGIN.right,
        y1: y(v), y2: y(v) }));
      svg.append(node("text", { x: MARGIN.left - 6, y: y(v) + 4, "text-anchor": "end" },
        short(v)));
    }
    months.forEach((m, i) => {
      svg.append(node("text", { x: x(i), y: HEIGHT - 8, "text-anchor": "middle" }, m.label));
      if (won[i] > 0) {
        const bar = node("rect", { class: "won", x: x(i) - 9, width: 18,
          y: y(won[i]), height: y(0) - y(won[i]) });
        bar.append(node("title", {}, `${m.label}: won ${m.won.text}`));
        svg.append(bar);
      }
    });
    if (banded) {
      const upper = months.map((m, i) => `${x(i)},${y(high[i])}`);
      const lower = months.map((m, i) => `${x(i)},${y(low[i])}`).reverse();
      svg.append(node("polygon", { class: "band", points: upper.concat(lower).join(" ") }));
    }
    svg.append(node("polyline", { class: "line",
      points: months.map((m, i) => `${x(i)},${y(expected[i])}`).join(" ") }));
    months.forEach((m, i) => {
      const dot = node("circle", { class: "dot", cx: x(i), cy: y(expected[i]), r: 4,
        "data-month": m.month });
      const range = m.p10 && m.p90 ? `, P10 ${m.p10.text}, P90 ${m.p90.text}` : "";
      dot.append(node("title", {}, `${m.label}: expected ${m.expected.text}${range}` +
        ` (${m.count} open, won ${m.won.text})`));
      svg.append(dot);
    });
    const legend = node("g", { transform: `translate(${MARGIN.left}, 12)` });
    legend.append(node("rect", { class: "band", x: 0, y: -8, width: 14, height: 10 }));
    legend.append(node("text", { x: 18, y: 1 }, "P10–P90"));
    legend.append(node("line", { class: "line", x1: 80, x2: 96, y1: -3, y2: -3 }));
    legend.append(node("text", { x: 100, y: 1 }, "expected"));
    legend.append(node("rect", { class: "won", x: 162, y: -8, width: 10, height: 10 }));
    legend.append(node("text", { x: 176, y: 1 }, "won"));
    svg.append(legend);
    container.replaceChildren(svg);
  }

  window.drawForecast = drawForecast;
})();
