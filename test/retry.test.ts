import { describe, expect, it } from 'vitest';
import { computeDelayMs, DEFAULT_RETRY } from '../src/index.js';

describe('computeDelayMs', () => {
  it('grows exponentially up to maxDelayMs with full jitter', () => {
    const top = () => 0.999999;
    expect(computeDelayMs(1, DEFAULT_RETRY, top)).toBe(999);
    expect(computeDelayMs(3, DEFAULT_RETRY, top)).toBe(3999);
    expect(computeDelayMs(20, DEFAULT_RETRY, top)).toBe(31_999);
    expect(computeDelayMs(5, DEFAULT_RETRY, () => 0)).toBe(0);
  });

  it('honours Retry-After but never beyond maxDelayMs', () => {
    expect(computeDelayMs(1, DEFAULT_RETRY, () => 0, 5_000)).toBe(5_000);
    expect(computeDelayMs(1, DEFAULT_RETRY, () => 0, 500_000)).toBe(32_000);
  });
});
