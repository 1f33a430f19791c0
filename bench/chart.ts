/**
 * The benchmark's headline as a picture: one row per scenario, one bar per contender, throughput on the left and
 * peak RSS on the right. A pure function from numbers to SVG text, no dependency: `run.ts` draws it from the medians
 * of a run, `redraw-chart.ts` from the table of a RESULTS.md.
 */

/** One contender's medians in one scenario. */
export interface ChartBar {
  contender: string;
  mibPerSecond: number;
  peakRssMiB: number;
}

/** One row of the chart. */
export interface ChartScenario {
  /** E.g. `S1: 1 GiB, 64 KiB writes, 8 MiB chunks`; wrapped at commas to fit the label column. */
  label: string;
  /** In any order; a contender of `ChartInput.contenders` without a bar is drawn as "not run". */
  bars: readonly ChartBar[];
}

export interface ChartInput {
  title: string;
  /** Lines under the title, each wrapped at commas when too long. */
  subtitle?: readonly string[];
  /** Legend order, bar order within a row and colour assignment. */
  contenders: readonly string[];
  scenarios: readonly ChartScenario[];
}

/** Colour-blind-safe (Paul Tol's "bright" scheme), in contender order; grey goes to the raw baseline when present. */
const PALETTE = ['#4477AA', '#EE6677', '#228833', '#CCBB44', '#66CCEE', '#AA3377'];
const BASELINE_COLOUR = '#BBBBBB';
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";

const MARGIN = 16;
const LABEL_WIDTH = 250;
const PANEL_WIDTH = 310;
const PANEL_GAP = 40;
/** Room kept right of the longest bar for its value. */
const VALUE_ROOM = 46;
const BAR_HEIGHT = 14;
const BAR_GAP = 3;
const GROUP_GAP = 16;
/** Characters of 12 px text that fit the label column (about 6.6 px each), and the whole width. */
const LABEL_CHARS = 36;
const LINE_CHARS = 135;

const WIDTH = MARGIN + LABEL_WIDTH + PANEL_WIDTH + PANEL_GAP + PANEL_WIDTH + MARGIN;

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** A round step (1, 2, 2.5 or 5 × 10^n) giving about `ticks` gridlines up to `max`. */
export function niceStep(max: number, ticks = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].find((factor) => factor * magnitude >= raw) ?? 10;
  return step * magnitude;
}

/** Splits `label` at ", " into lines of at most `width` characters (a longer single part stays whole). */
function wrap(label: string, width: number): string[] {
  const lines: string[] = [];
  for (const part of label.split(', ')) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 2 + part.length <= width) lines[lines.length - 1] = `${last}, ${part}`;
    else lines.push(part);
  }
  return lines;
}

/** Whole numbers from 10 up (the runs vary by more than that), one decimal below. */
const formatValue = (value: number): string => (Math.abs(value) >= 10 || Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1));

interface Panel {
  x: number;
  title: string;
  value: (bar: ChartBar) => number;
  /** Scale end: a whole number of steps at or above the largest value. */
  max: number;
  step: number;
}

function panel(x: number, title: string, value: (bar: ChartBar) => number, scenarios: readonly ChartScenario[]): Panel {
  const largest = Math.max(0, ...scenarios.flatMap((scenario) => scenario.bars.map(value)).filter(Number.isFinite));
  const step = niceStep(largest);
  return { x, title, value, step, max: Math.max(step, Math.ceil(largest / step) * step) };
}

/** The chart as a standalone SVG document. */
export function renderBenchChart(input: ChartInput): string {
  const colourOf = new Map<string, string>();
  let next = 0;
  for (const contender of input.contenders) {
    colourOf.set(contender, /raw/i.test(contender) ? BASELINE_COLOUR : (PALETTE[next++ % PALETTE.length] ?? '#000000'));
  }

  const out: string[] = [];
  const text = (x: number, y: number, content: string, attributes = ''): void => {
    out.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attributes ? ` ${attributes}` : ''}>${escapeXml(content)}</text>`);
  };

  let y = MARGIN + 16;
  text(MARGIN, y, input.title, 'font-size="16" font-weight="bold"');
  for (const [i, line] of (input.subtitle ?? []).flatMap((line) => wrap(line, LINE_CHARS)).entries()) {
    y += i === 0 ? 20 : 16;
    text(MARGIN, y, line, 'font-size="12" fill="#555555"');
  }

  // Legend.
  y += 24;
  let legendX = MARGIN;
  for (const contender of input.contenders) {
    out.push(`<rect x="${legendX}" y="${y - 11}" width="12" height="12" fill="${colourOf.get(contender)}"/>`);
    text(legendX + 17, y, contender, 'font-size="12"');
    legendX += 17 + contender.length * 7 + 24;
  }

  const panels = [
    panel(MARGIN + LABEL_WIDTH, 'Throughput, MiB/s (higher is better)', (bar) => bar.mibPerSecond, input.scenarios),
    panel(MARGIN + LABEL_WIDTH + PANEL_WIDTH + PANEL_GAP, 'Peak RSS, MiB (lower is better)', (bar) => bar.peakRssMiB, input.scenarios),
  ];
  const barLength = PANEL_WIDTH - VALUE_ROOM;

  y += 30;
  for (const p of panels) text(p.x, y, p.title, 'font-size="13" font-weight="bold"');
  const plotTop = y + 10;

  // Rows first, so that the gridlines can span them.
  const rows: string[] = [];
  let rowY = plotTop + GROUP_GAP / 2;
  for (const scenario of input.scenarios) {
    const groupHeight = input.contenders.length * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    const lines = wrap(scenario.label, LABEL_CHARS);
    const firstLine = rowY + groupHeight / 2 - ((lines.length - 1) * 15) / 2 + 4;
    lines.forEach((line, i) => {
      rows.push(`<text x="${MARGIN}" y="${(firstLine + i * 15).toFixed(1)}" font-size="12">${escapeXml(line)}</text>`);
    });
    input.contenders.forEach((contender, i) => {
      const barY = rowY + i * (BAR_HEIGHT + BAR_GAP);
      const bar = scenario.bars.find((b) => b.contender === contender);
      for (const p of panels) {
        const value = bar === undefined ? Number.NaN : p.value(bar);
        if (!Number.isFinite(value)) {
          rows.push(`<text x="${p.x + 4}" y="${(barY + BAR_HEIGHT - 3).toFixed(1)}" font-size="11" fill="#888888">not run</text>`);
          continue;
        }
        const length = Math.max(1, (value / p.max) * barLength);
        rows.push(
          `<rect class="bar" data-contender="${escapeXml(contender)}" data-value="${value}" x="${p.x}" y="${barY.toFixed(1)}" ` +
            `width="${length.toFixed(1)}" height="${BAR_HEIGHT}" fill="${colourOf.get(contender)}"><title>${escapeXml(`${contender}: ${formatValue(value)}`)}</title></rect>`,
        );
        rows.push(
          `<text x="${(p.x + length + 4).toFixed(1)}" y="${(barY + BAR_HEIGHT - 3).toFixed(1)}" font-size="11">${formatValue(value)}</text>`,
        );
      }
    });
    rowY += groupHeight + GROUP_GAP;
  }
  const plotBottom = rowY - GROUP_GAP / 2;

  // Gridlines and their values under the plot.
  for (const p of panels) {
    for (let tick = 0; tick <= p.max + p.step / 1000; tick += p.step) {
      const x = p.x + (tick / p.max) * barLength;
      out.push(
        `<line x1="${x.toFixed(1)}" y1="${plotTop}" x2="${x.toFixed(1)}" y2="${plotBottom.toFixed(1)}" stroke="${tick === 0 ? '#888888' : '#E5E5E5'}"/>`,
      );
      text(x, plotBottom + 14, formatValue(tick), 'font-size="11" fill="#555555" text-anchor="middle"');
    }
  }
  out.push(...rows);

  const height = Math.ceil(plotBottom + 14 + MARGIN);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${escapeXml(FONT)}" fill="#222222">`,
    // An opaque background: the picture stays legible on a dark page.
    `<rect width="100%" height="100%" fill="#FFFFFF"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
