// The shape of a schema migration, shared by every store: numbered, applied in order, recorded in
// `schema_migrations`, and additive only, so an older binary keeps running on a newer schema.

export interface Migration {
  /** 1, 2, 3… with no gaps; the number is what `schema_migrations` records. */
  version: number;
  /** Short description, recorded next to the version for people reading the table. */
  name: string;
  /** SQL statements run in order, inside the one transaction that applies pending migrations. */
  statements: readonly string[];
}

/**
 * Checks a store's migration list is numbered 1…n in order. A misnumbered list is a programming
 * error (a TypeError), caught by every test that opens a store.
 */
export function checkMigrations(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new TypeError(`migration "${m.name}" has version ${m.version}, expected ${i + 1}`);
    }
  });
}

/** The migrations not yet applied, in the order they must run. */
export function pendingMigrations(list: readonly Migration[], applied: ReadonlySet<number>): Migration[] {
  return list.filter((m) => !applied.has(m.version));
}

/** The highest version this binary knows; a database may be ahead of it after a rolling upgrade. */
export function latestVersion(list: readonly Migration[]): number {
  return list.length === 0 ? 0 : list[list.length - 1]!.version;
}
