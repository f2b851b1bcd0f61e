/**
 * How the console writes numbers, money and times: zh-CN grouping with 万 / 亿 for large counts
 * (English: plain grouping), fen as ¥ with two decimals, times in the community's time zone.
 */
import type { Lang } from './i18n.js'

/** Formatters for one language and time zone. */
export interface Format {
  /** A count: `12,345` below 10 000, `1.23万` / `3.4亿` above in Chinese. */
  count(n: number): string
  /** A ratio in [0, 1] as a percentage with one decimal. */
  percent(x: number): string
  /** Fen as yuan: `¥1,234.50`. */
  fen(n: number): string
  /** A signed relative change (`+12.5%`), or `—` when there is none. */
  change(x: number | null): string
  /** A date and time in the community's time zone: `2026-12-02 17:05`. */
  dateTime(d: Date): string
  /** A time of day in the community's time zone: `17:05`. */
  time(d: Date): string
}

/** Formatters for `lang` with times in `timeZone`. */
export function consoleFormat(lang: Lang, timeZone: string): Format {
  const locale = lang === 'en' ? 'en-US' : 'zh-CN'
  const grouped = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 })
  const parts = (d: Date) => {
    const p = Object.fromEntries(
      new Intl.DateTimeFormat('en-CA', {
        timeZone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      })
        .formatToParts(d)
        .map((x) => [x.type, x.value]),
    )
    return p as Record<'year' | 'month' | 'day' | 'hour' | 'minute', string>
  }
  const count = (n: number) => {
    const abs = Math.abs(n)
    if (lang === 'zh-CN' && abs >= 100_000_000) return `${trim(n / 100_000_000)}亿`
    if (lang === 'zh-CN' && abs >= 10_000) return `${trim(n / 10_000)}万`
    return grouped.format(Math.round(n * 100) / 100)
  }
  return {
    count,
    percent: (x) => `${(Math.round(x * 1000) / 10).toFixed(1)}%`,
    fen: (n) =>
      `¥${new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(n / 100)}`,
    change: (x) =>
      x === null || !Number.isFinite(x)
        ? '—'
        : `${x > 0 ? '+' : ''}${(Math.round(x * 1000) / 10).toFixed(1)}%`,
    dateTime: (d) => {
      const p = parts(d)
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`
    },
    time: (d) => {
      const p = parts(d)
      return `${p.hour}:${p.minute}`
    },
  }
}

/** Two decimals at most, trailing zeros dropped: 1.20 → 1.2. */
const trim = (x: number) => String(Math.round(x * 100) / 100)
