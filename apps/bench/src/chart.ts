/**
 * The throughput chart, drawn straight from the results as SVG (no chart library): delivered
 * events/s for each variant, grouped by number of clients, with min–max whiskers.
 */
import { summarize } from "./measure";
import type { VariantName } from "./protocol";
import type { Results } from "./results";

const COLORS: Record<VariantName, string> = {
  raw: "#4d4d4d",
  "raw-socket": "#000000",
  "express-raw": "#a6a6a6",
  "better-sse": "#e69f00",
  sluice: "#0072b2",
  "sse-channel": "#009e73",
  "express-sse": "#cc79a7",
};

const WIDTH = 760;
const HEIGHT = 440;
const MARGIN = { left: 84, right: 24, top: 92, bottom: 64 };

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function short(value: number): string {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(2)}M`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(value >= 1e5 ? 0 : 1)}k`;
  return String(Math.round(value));
}

/** A round axis maximum above `value`: 1, 2, 2.5 or 5 times a power of ten. */
function niceCeil(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

export function throughputSvg(results: Results): string | undefined {
  const groups = results.config.fanout
    .map((size) => ({ size, key: `fanout-${size.clients}` }))
    .filter((g) => results.cells.some((c) => c.scenario === g.key));
  if (groups.length === 0) return undefined;
  const variants = results.variants;

  const bars = groups.map((g) =>
    variants.map((variant) => {
      const values = results.cells
        .filter((c) => c.scenario === g.key && c.variant === variant)
        .map((c) => c.metrics?.["eventsPerSec"])
        .filter((v): v is number => v !== undefined);
      return { variant, summary: values.length === 0 ? undefined : summarize(values) };
    }),
  );
  const top = niceCeil(Math.max(1, ...bars.flat().map((b) => b.summary?.max ?? 0)));

  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value: number): number => MARGIN.top + plotH - (value / top) * plotH;
  const groupW = plotW / groups.length;
  const barW = (groupW * 0.8) / variants.length;

  const svg: string[] = [];
  svg.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
      `viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, -apple-system, Segoe UI, ` +
      `Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600">` +
      `Broadcast fan-out: delivered events/s</text>`,
    `<text x="${WIDTH / 2}" y="42" text-anchor="middle" fill="#555">` +
      escape(
        (results.config.runs === 1
          ? "1 run · "
          : `median of ${results.config.runs} runs, whiskers min–max · `) +
          `${results.machine.cpu}, ${results.machine.cores} cores, ` +
          `Node ${results.machine.node}` +
          (results.mode === "quick" ? " · --quick smoke run, not a result" : ""),
      ) +
      `</text>`,
  );

  // Legend.
  const legendW = WIDTH - MARGIN.left - MARGIN.right;
  const itemW = legendW / variants.length;
  variants.forEach((variant, i) => {
    const x = MARGIN.left + i * itemW;
    svg.push(
      `<rect x="${x}" y="58" width="12" height="12" fill="${COLORS[variant]}"/>`,
      `<text x="${x + 17}" y="68.5">${escape(variant)}</text>`,
    );
  });

  // Y axis: grid lines and labels.
  for (let i = 0; i <= 5; i++) {
    const value = (top / 5) * i;
    const py = y(value);
    svg.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${py}" y2="${py}" ` +
        `stroke="${i === 0 ? "#333" : "#e3e3e3"}"/>`,
      `<text x="${MARGIN.left - 8}" y="${py + 4}" text-anchor="end">${short(value)}</text>`,
    );
  }
  svg.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#333"/>`,
    `<text transform="translate(20 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">` +
      `delivered events/s (clients × events ÷ time)</text>`,
  );

  // Bars, whiskers and value labels, one group per number of clients.
  groups.forEach((g, gi) => {
    const x0 = MARGIN.left + gi * groupW + groupW * 0.1;
    bars[gi]?.forEach((bar, vi) => {
      const x = x0 + vi * barW;
      const cx = x + barW / 2;
      const s = bar.summary;
      if (s === undefined) {
        svg.push(
          `<text x="${cx}" y="${y(0) - 6}" text-anchor="middle" fill="#b00" font-size="10">failed</text>`,
        );
        return;
      }
      svg.push(
        `<rect x="${x + 1}" y="${y(s.median)}" width="${barW - 2}" height="${y(0) - y(s.median)}" ` +
          `fill="${COLORS[bar.variant]}"><title>${escape(
            `${bar.variant}: ${Math.round(s.median).toLocaleString("en-US")} events/s`,
          )}</title></rect>`,
      );
      if (s.n > 1) {
        svg.push(
          `<line x1="${cx}" x2="${cx}" y1="${y(s.min)}" y2="${y(s.max)}" stroke="#000"/>`,
          `<line x1="${cx - 4}" x2="${cx + 4}" y1="${y(s.min)}" y2="${y(s.min)}" stroke="#000"/>`,
          `<line x1="${cx - 4}" x2="${cx + 4}" y1="${y(s.max)}" y2="${y(s.max)}" stroke="#000"/>`,
        );
      }
      svg.push(
        `<text x="${cx}" y="${y(s.max) - 5}" text-anchor="middle" font-size="10">${short(s.median)}</text>`,
      );
    });
    const label = `${g.size.clients.toLocaleString("en-US")} clients`;
    const sub = `× ${g.size.events.toLocaleString("en-US")} events`;
    const gx = MARGIN.left + gi * groupW + groupW / 2;
    svg.push(
      `<text x="${gx}" y="${MARGIN.top + plotH + 20}" text-anchor="middle" font-weight="600">${label}</text>`,
      `<text x="${gx}" y="${MARGIN.top + plotH + 36}" text-anchor="middle" fill="#555">${sub}</text>`,
    );
  });
  svg.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle">connected clients</text>`,
    `</svg>`,
  );
  return svg.join("\n") + "\n";
}
