import { describe, expect, it } from 'vitest';
import { createInProcessBus } from '../src/index.js';
import { busConformance } from './conformance.js';

busConformance('in-process', async (options) => createInProcessBus(options));

describe('in-process bus', () => {
  it('reports its kind', () => {
    expect(createInProcessBus().kind).toBe('in-process');
  });
});
