/**
 * How much memory a source's dropped buffers hold before V8 collects them: `npx tsx bench/external-garbage.ts
 * [--mib-per-second 25] [--seconds 20]`. Allocates 64 KiB buffers at the rate of S6's 100 sources (25 MiB/s),
 * keeps none, and prints the highest `arrayBuffers` seen: the RSS of every contender in the many-stream scenarios
 * (S6, S7, S9) includes up to this much for its sources, whatever it holds itself.
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { 'mib-per-second': { type: 'string', default: '25' }, seconds: { type: 'string', default: '20' } },
});
const bytesPerSecond = Number(values['mib-per-second']) * 1024 * 1024;
const seconds = Number(values.seconds);
const WRITE = 64 * 1024;
const TICK_MS = 25;
const block = Buffer.alloc(WRITE, 1);
const perTick = Math.max(1, Math.round((bytesPerSecond * TICK_MS) / 1000 / WRITE));
let peak = 0;
const started = Date.now();
const timer = setInterval(() => {
  for (let i = 0; i < perTick; i++) Buffer.from(block); // a fresh buffer, as a source hands out, dropped at once
  peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  if (Date.now() - started < seconds * 1000) return;
  clearInterval(timer);
  const mib = (perTick * WRITE * (1000 / TICK_MS)) / 1048576;
  console.log(
    `${mib.toFixed(1)} MiB/s of dropped 64 KiB buffers for ${seconds} s: arrayBuffers peaked at ${(peak / 1048576).toFixed(1)} MiB`,
  );
}, TICK_MS);
