import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Hang guards, not expectations: a test that waits for an event waits as long as a loaded machine needs. On an
    // idle machine the slowest test takes ~15 s; beside two CPU hogs, three to five times as long.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: the suite is I/O bound over loopback, two workers keep both busy.
    maxWorkers: 2,
  },
});
