// Delivers the change feed to watchers: each watcher keeps its own cursor and reads the `changes`
// table past it, so changes from this process (told at once) and from other processes on the same
// file (found by polling) arrive in seq order, each exactly once.
import type { Change } from '../store.js';

export interface ChangeSource {
  /** Changes with seq > afterSeq, oldest first. */
  read(afterSeq: number): Change[];
  /** The highest seq written so far (0 when none). */
  lastSeq(): number;
}

interface Watcher {
  cursor: number;
  onChange: (c: Change) => void;
}

export class ChangeFeed {
  readonly #source: ChangeSource;
  readonly #pollMs: number;
  readonly #watchers = new Set<Watcher>();
  #timer: NodeJS.Timeout | undefined;

  constructor(source: ChangeSource, pollMs: number) {
    this.#source = source;
    this.#pollMs = pollMs;
  }

  watch(onChange: (c: Change) => void): () => void {
    const w: Watcher = { cursor: this.#source.lastSeq(), onChange };
    this.#watchers.add(w);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.deliver(), this.#pollMs);
      // Watching must never keep a CLI command (or a test) alive.
      this.#timer.unref();
    }
    return () => {
      this.#watchers.delete(w);
      if (this.#watchers.size === 0) this.#stopTimer();
    };
  }

  /** Reads and delivers whatever each watcher has not seen yet; called on publish and on each tick. */
  deliver(): void {
    for (const w of [...this.#watchers]) {
      let batch: Change[];
      try {
        batch = this.#source.read(w.cursor);
      } catch {
        // The database is busy or closed; the next tick tries again from the same cursor.
        return;
      }
      for (const c of batch) {
        // A callback may publish, which delivers re-entrantly and moves the cursor past the rest of
        // this batch; skipping what is already delivered keeps the order and exactly-once.
        if (c.seq <= w.cursor || !this.#watchers.has(w)) continue;
        w.cursor = c.seq;
        try {
          w.onChange(c);
        } catch (e) {
          // One watcher's bug must not stop the feed for the others, nor reach the publisher.
          process.emitWarning(`change feed watcher threw: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
  }

  close(): void {
    this.#watchers.clear();
    this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
