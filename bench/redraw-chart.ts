/**
 * `npm run bench:chart [-- RESULTS.md [OUT.svg]]`: draws the chart again from the numbers a RESULTS.md already holds
 * (its results table of medians), without running anything. Defaults: bench/RESULTS.md into bench/RESULTS.svg.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { renderBenchChart } from './chart.js';
import { chartInputFromReport } from './report.js';

const report = resolve(process.argv[2] ?? join(import.meta.dirname, 'RESULTS.md'));
const out = resolve(process.argv[3] ?? report.replace(/\.md$/, '') + '.svg');
writeFileSync(out, renderBenchChart(chartInputFromReport(readFileSync(report, 'utf8'))));
process.stdout.write(`Wrote ${relative(process.cwd(), out)} from ${relative(process.cwd(), report)}\n`);
