/**
 * Data at risk (issue 15): bytes a stream's source had written that the server had not yet confirmed, the most a
 * crash of the process at that moment would lose. One meter per stream, fed from two sides: the source after each
 * write (`written`) and the contender whenever its library reports a commit the server confirmed (`committed`:
 * ours' `progress` events, GCS's persisted offset). Both sides sample, because the figure peaks just before a
 * commit lands and drops just after.
 *
 * A contender that reports no commit leaves the meter without a figure (`largest` is undefined, "n/a" in the
 * report): bytes sent on a socket are not bytes the server kept.
 */

/** Tracks one stream's data at risk and keeps its maximum. */
export class DataAtRiskMeter {
  #written = 0;
  #committed = 0;
  #largest = 0;
  #reported = false;

  /** The source has written `bytesWritten` bytes in all. */
  written(bytesWritten: number): void {
    this.#written = bytesWritten;
    this.#sample();
  }

  /** The server confirmed the first `bytesCommitted` bytes. */
  committed(bytesCommitted: number): void {
    this.#reported = true;
    this.#committed = Math.max(this.#committed, bytesCommitted);
    this.#sample();
  }

  /** The most bytes written but not confirmed at any sample; undefined if the contender reported no commit. */
  get largest(): number | undefined {
    return this.#reported ? this.#largest : undefined;
  }

  #sample(): void {
    this.#largest = Math.max(this.#largest, this.#written - this.#committed);
  }
}
