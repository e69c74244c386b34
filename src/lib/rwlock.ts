/**
 * Shared/exclusive lock for async work. Any number of shared holders run together; an exclusive
 * holder runs alone. A waiting exclusive request holds back new shared ones (writer preference),
 * so a steady stream of shared work cannot starve it. Uncontended, `shared` costs a counter.
 */
/** A shared/exclusive lock: this process's (below) or a cluster's (PostgreSQL advisory locks). */
export interface WriteLock {
  shared<T>(task: () => Promise<T>): Promise<T>;
  exclusive<T>(task: () => Promise<T>): Promise<T>;
}

export class SharedExclusiveLock implements WriteLock {
  private sharedHolders = 0;
  private exclusiveHeld = false;
  private exclusiveWaiting = 0;
  private wakeShared: (() => void)[] = [];
  private wakeExclusive: (() => void)[] = [];

  async shared<T>(task: () => Promise<T>): Promise<T> {
    while (this.exclusiveHeld || this.exclusiveWaiting > 0) await new Promise<void>((r) => this.wakeShared.push(r));
    this.sharedHolders++;
    try {
      return await task();
    } finally {
      this.sharedHolders--;
      this.wake();
    }
  }

  async exclusive<T>(task: () => Promise<T>): Promise<T> {
    this.exclusiveWaiting++;
    try {
      while (this.exclusiveHeld || this.sharedHolders > 0) await new Promise<void>((r) => this.wakeExclusive.push(r));
    } finally {
      this.exclusiveWaiting--;
    }
    this.exclusiveHeld = true;
    try {
      return await task();
    } finally {
      this.exclusiveHeld = false;
      this.wake();
    }
  }

  private wake(): void {
    if (this.exclusiveHeld) return;
    if (this.exclusiveWaiting > 0) {
      if (this.sharedHolders === 0) this.wakeExclusive.shift()?.();
      return;
    }
    for (const w of this.wakeShared.splice(0)) w();
  }
}
