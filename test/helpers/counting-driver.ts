// A storage driver with a count of its reads of stored bytes: a fake around the real one, so a test
// can see what a node re-read.
import type { StorageDriver } from '../../src/storage/driver/driver.ts';

export function counting(driver: StorageDriver): { driver: StorageDriver; reads: () => number } {
  let reads = 0;
  const wrapped = new Proxy(driver, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'reader') return (...args: unknown[]) => ((reads++, (v as (...a: unknown[]) => unknown).apply(target, args)));
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { driver: wrapped, reads: () => reads };
}
