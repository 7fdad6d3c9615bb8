import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // .spec, not .test: `node --test clients/node/` must not pick this file up.
    include: ['*.spec.mjs'],
    // Starting fleetmock takes milliseconds; the bounds are for a busy machine.
    hookTimeout: 30000,
    testTimeout: 30000,
  },
});
