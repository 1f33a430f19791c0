/**
 * The peak resident set of this process, as the kernel counts it.
 *
 * Not `process.resourceUsage().maxRSS` alone: on Linux, getrusage's maxrss keeps the high-water mark of the
 * address space a process had before `exec`, the forked copy of its parent. Every process the harness (tsx, about
 * 75 MiB) spawns would report at least the harness's RSS at that moment: a floor above the real peak of a light
 * client (a plain `node` is about 40 MiB). `VmHWM` in /proc/self/status is the mark of the process's own address
 * space only. Elsewhere, maxRSS is what there is.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** `VmHWM` in bytes, or undefined where /proc does not have it. */
function highWaterMark(): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** The most bytes this process has had resident: since it started, or since the last `resetPeakRss()`. */
export function peakRss(): number {
  return highWaterMark() ?? process.resourceUsage().maxRSS * 1024;
}

/**
 * Restarts the high-water mark from the current RSS (Linux 4.0+: `5` written to /proc/self/clear_refs), so that a
 * later `peakRss()` covers only what came after. False where that is not possible: `peakRss()` then stays the
 * peak of the process's whole life.
 */
export function resetPeakRss(): boolean {
  if (highWaterMark() === undefined) return false;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}
