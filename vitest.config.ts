import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two cores: the suite is I/O bound over loopback, two workers keep both busy.
    maxWorkers: 2,
  },
});
