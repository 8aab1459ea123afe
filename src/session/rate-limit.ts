// Failed sign-ins counted per client address in a sliding window, so one address cannot hammer the
// callback (guessing states, replaying codes). In memory: each replica limits what it sees.
export class FailureLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #failures = new Map<string, number[]>();

  constructor(opts: { max: number; windowMs: number; now: () => number }) {
    this.#max = opts.max;
    this.#windowMs = opts.windowMs;
    this.#now = opts.now;
  }

  #recent(addr: string): number[] {
    const since = this.#now() - this.#windowMs;
    const list = (this.#failures.get(addr) ?? []).filter((t) => t > since);
    if (list.length) this.#failures.set(addr, list);
    else this.#failures.delete(addr);
    return list;
  }

  /** True when the address has used up its failures for now. */
  blocked(addr: string): boolean {
    return this.#recent(addr).length >= this.#max;
  }

  fail(addr: string): void {
    const list = this.#recent(addr);
    list.push(this.#now());
    this.#failures.set(addr, list);
    // Bound memory under a flood of addresses: forget the oldest.
    if (this.#failures.size > 100_000) {
      const first = this.#failures.keys().next().value;
      if (first !== undefined) this.#failures.delete(first);
    }
  }
}
