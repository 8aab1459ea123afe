// Time-of-day windows for the `time` criterion, and parsing of the timestamps the `gt/gte/lt/lte`
// comparisons accept. Windows are in UTC unless a `tz` (an IANA zone, resolved by Intl) is given.

export const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Day = (typeof DAYS)[number];

export interface TimeWindow {
  /** Minutes since midnight; the window is [after, before), wrapping midnight when after > before. */
  after?: number;
  before?: number;
  days?: ReadonlySet<Day>;
  tz: string;
  /** Local day and minute of `now`. */
  local(now: Date): { day: Day; minute: number };
}

export function parseHhMm(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(s);
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

/** Returns a function from a Date to the local day and minute in `tz`, or undefined for an unknown zone. */
export function localClock(tz: string): ((now: Date) => { day: Day; minute: number }) | undefined {
  if (tz === 'UTC')
    return (now) => ({
      day: DAYS[now.getUTCDay()] as Day,
      minute: now.getUTCHours() * 60 + now.getUTCMinutes(),
    });
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
  } catch {
    return undefined;
  }
  return (now) => {
    let day: Day = 'sun';
    let hour = 0;
    let minute = 0;
    for (const p of fmt.formatToParts(now)) {
      if (p.type === 'weekday') day = p.value.slice(0, 3).toLowerCase() as Day;
      else if (p.type === 'hour') hour = Number(p.value);
      else if (p.type === 'minute') minute = Number(p.value);
    }
    return { day, minute: hour * 60 + minute };
  };
}

export function inWindow(w: TimeWindow, now: Date): boolean {
  const { day, minute } = w.local(now);
  if (w.days && !w.days.has(day)) return false;
  const { after, before } = w;
  if (after !== undefined && before !== undefined) {
    return after <= before ? minute >= after && minute < before : minute >= after || minute < before;
  }
  if (after !== undefined) return minute >= after;
  if (before !== undefined) return minute < before;
  return true;
}

export function formatLocal(w: TimeWindow, now: Date): string {
  const { day, minute } = w.local(now);
  return `${day} ${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')} ${w.tz}`;
}

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** An ISO 8601 timestamp (date, or date-time with zone) in epoch milliseconds. */
export function parseIsoTimestamp(s: string): number | undefined {
  if (!ISO.test(s)) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `now`, `now-1h`, `now+10m`: a time relative to the evaluation clock, as an offset in milliseconds. */
export function parseNowOffset(s: string): number | undefined {
  const m = /^now(?:\s*([+-])\s*(\d{1,9})([smhd]))?$/.exec(s);
  if (!m) return undefined;
  if (!m[1]) return 0;
  const ms = Number(m[2]) * UNIT_MS[m[3] as keyof typeof UNIT_MS];
  return m[1] === '-' ? -ms : ms;
}
