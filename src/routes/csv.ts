/**
 * CSV answers of the operator API (`format=csv`): a header row, one row per record, RFC 4180
 * quoting where a field needs it, `text/csv; charset=utf-8` and an attachment file name.
 */
import type { Context } from 'hono'

/** A CSV field: null → empty; quoted when it holds a comma, quote or line break. */
export function csvField(value: string | number | boolean | null): string {
  const text = value === null ? '' : String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/**
 * Answers `rows` under `header` as a CSV attachment named `filename`.
 * @example return csvResponse(c, 'dau.csv', ['start', 'value'], [['2026-11-01', 3]])
 */
export function csvResponse(
  c: Context,
  filename: string,
  header: string[],
  rows: (string | number | boolean | null)[][],
): Response {
  const lines = [header, ...rows].map((r) => r.map(csvField).join(','))
  c.header('content-type', 'text/csv; charset=utf-8')
  c.header('content-disposition', `attachment; filename="${filename}"`)
  return c.body(`${lines.join('\n')}\n`)
}
