/** The benchmark's SVG chart (bench/chart.ts) and the reading of a report's medians back into it (bench/report.ts). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { niceStep, renderBenchChart, type ChartInput } from '../bench/chart.js';
import { chartInputFromReport } from '../bench/report.js';

interface DrawnBar {
  contender: string;
  value: number;
  x: number;
  width: number;
}

/** The bars of a rendered chart, in document order. */
function barsOf(svg: string): DrawnBar[] {
  return [...svg.matchAll(/<rect class="bar" data-contender="([^"]*)" data-value="([^"]*)" x="([^"]*)" y="[^"]*" width="([^"]*)"/g)].map(
    (m) => ({
      contender: m[1]!,
      value: Number(m[2]),
      x: Number(m[3]),
      width: Number(m[4]),
    }),
  );
}

const INPUT: ChartInput = {
  title: 'A & B <compared>',
  subtitle: ['test numbers, made up, for this test only, '.repeat(4).slice(0, -2), 'second line'],
  contenders: ['raw-put', 'ours', 'theirs'],
  scenarios: [
    {
      label: 'S1: 1 GiB, 64 KiB writes, 8 MiB chunks',
      bars: [
        { contender: 'theirs', mibPerSecond: 200, peakRssMiB: 120 },
        { contender: 'raw-put', mibPerSecond: 1000, peakRssMiB: 80 },
        { contender: 'ours', mibPerSecond: 800, peakRssMiB: 100 },
      ],
    },
    {
      label: 'S5: 4 GiB',
      bars: [
        { contender: 'raw-put', mibPerSecond: 1100, peakRssMiB: 90 },
        { contender: 'ours', mibPerSecond: 500, peakRssMiB: 110 },
      ],
    },
  ],
};

describe('the benchmark chart', () => {
  it('draws one bar per contender, scenario and metric, lengths proportional to the numbers', () => {
    const svg = renderBenchChart(INPUT);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    const bars = barsOf(svg);
    // 3 + 2 bars in each of the two panels, in contender order within a row whatever the input order.
    expect(bars).toHaveLength(10);
    expect(bars.map((b) => b.contender)).toEqual([
      'raw-put',
      'raw-put',
      'ours',
      'ours',
      'theirs',
      'theirs',
      'raw-put',
      'raw-put',
      'ours',
      'ours',
    ]);
    const throughput = bars.filter((_, i) => i % 2 === 0);
    const rss = bars.filter((_, i) => i % 2 === 1);
    expect(throughput.map((b) => b.value)).toEqual([1000, 800, 200, 1100, 500]);
    expect(rss.map((b) => b.value)).toEqual([80, 100, 120, 90, 110]);
    for (const panel of [throughput, rss]) {
      const scale = panel[0]!.width / panel[0]!.value;
      for (const bar of panel) expect(bar.width / bar.value).toBeCloseTo(scale, 2);
      expect(new Set(panel.map((b) => b.x)).size).toBe(1); // one baseline per panel
    }
    expect(rss[0]!.x).toBeGreaterThan(throughput[0]!.x + Math.max(...throughput.map((b) => b.width)));
    // Values are written next to their bars, and a contender that did not run says so.
    for (const value of ['1000', '800', '200', '1100', '500', '80', '120']) expect(svg).toContain(`>${value}</text>`);
    expect(svg.match(/>not run</g)).toHaveLength(2);
  });

  it('escapes text and wraps long scenario labels at commas', () => {
    const svg = renderBenchChart(INPUT);
    expect(svg).toContain('>A &amp; B &lt;compared&gt;</text>');
    expect(svg).not.toContain('<compared>');
    expect(svg).toContain('>S1: 1 GiB, 64 KiB writes</text>');
    expect(svg).toContain('>8 MiB chunks</text>');
    // Subtitle lines too, at the whole width.
    expect(svg).toContain('>second line</text>');
    expect(svg.match(/>test numbers, [^<]*<\/text>/g)!.length).toBeGreaterThan(1);
  });

  it('puts gridlines at round steps', () => {
    expect(niceStep(1144)).toBe(250);
    expect(niceStep(154)).toBe(50);
    expect(niceStep(1)).toBe(0.2);
    expect(niceStep(0)).toBe(1);
  });

  it('reads the medians of bench/RESULTS.md back, as the committed chart shows them', () => {
    const report = readFileSync(join(import.meta.dirname, '..', 'bench', 'RESULTS.md'), 'utf8');
    const input = chartInputFromReport(report);
    expect(input.contenders).toEqual([
      'raw-put',
      'gcs-resumable-stream',
      '@google-cloud/storage',
      'gcs-resumable-stream retainWrites',
      'gcs-resumable-stream parallel',
    ]);
    expect(input.scenarios.map((s) => s.label.split(':')[0])).toEqual(['S1', 'S2', 'S3', 'S4', 'S5', 'S10', 'S11']);
    for (const scenario of input.scenarios) {
      for (const bar of scenario.bars) {
        expect(bar.mibPerSecond).toBeGreaterThan(0);
        expect(bar.peakRssMiB).toBeGreaterThan(0);
      }
    }
    // The committed picture is the one these numbers draw.
    expect(readFileSync(join(import.meta.dirname, '..', 'bench', 'RESULTS.svg'), 'utf8')).toBe(renderBenchChart(input));
  });
});
