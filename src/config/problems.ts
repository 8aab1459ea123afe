// Configuration problems and the one error that carries them: every problem found in a config file,
// each with file, line, column and dotted path, so a person can fix them all in one pass.
import { GatehouseError } from '../lib/errors.js';

/** One thing wrong with a configuration file. `line` and `column` are 1-based; 0 means "no position". */
export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the field, like `clients[1].allowed_audiences`; empty for the document itself. */
  path: string;
  message: string;
  /** The likely fix, like `did you mean "allowed_audiences"?`. */
  suggestion?: string;
  /** `ERR_CONFIG_REF_UNRESOLVED` for a `${env:…}` / `${file:…}` that could not be resolved. */
  code: 'ERR_CONFIG_INVALID' | 'ERR_CONFIG_REF_UNRESOLVED';
}

/** `gatehouse.yaml:12:5 clients[0].allowd_audiences: unknown key; did you mean "allowed_audiences"?` */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  const what = p.path ? ` ${p.path}: ` : ': ';
  return `${where}${what}${p.message}${p.suggestion ? `; ${p.suggestion}` : ''}`;
}

/** Problems sorted by position, so the list reads top to bottom like the file. */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}

/**
 * A configuration that cannot be used. The message lists every problem, one per line; `problems` holds
 * them as data. The code is ERR_CONFIG_REF_UNRESOLVED when unresolved references are the only problems.
 */
export class ConfigError extends GatehouseError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const sorted = sortProblems(problems);
    const onlyRefs = sorted.length > 0 && sorted.every((p) => p.code === 'ERR_CONFIG_REF_UNRESOLVED');
    const head =
      sorted.length === 1 ? 'invalid configuration:' : `invalid configuration (${sorted.length} problems):`;
    super(
      onlyRefs ? 'ERR_CONFIG_REF_UNRESOLVED' : 'ERR_CONFIG_INVALID',
      [head, ...sorted.map(formatProblem)].join('\n  '),
      {
        field: sorted[0]?.path,
        problems: sorted,
      },
    );
    this.name = 'ConfigError';
    this.problems = sorted;
  }
}

/** `['clients', 1, 'allowed_audiences']` → `clients[1].allowed_audiences`; odd keys are quoted. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) out += out ? `.${s}` : s;
      else out += `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}
