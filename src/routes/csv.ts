/**
 * CSV answers of the operator API (`format=csv`) and the console's exports — every CSV the server
 * writes: a header row, one row per record, RFC 4180 quoting where a field needs it, text that
 * would start a formula neutralised, `text/csv; charset=utf-8` and an attachment file name.
 */
import type { Context } from 'hono'

/**
 * A text cell a spreadsheet would run as a formula (Excel, WPS, LibreOffice — quoted or not): one
 * beginning with `=`, `+`, `-`, `@`, a tab or a carriage return. A string that is just a number
 * (`-5`, `-0.25`) is a figure, not a formula.
 */
const FORMULA_START = /^[=+\-@\t\r]/
const PLAIN_NUMBER = /^-?\d+(\.\d+)?$/

/**
 * A CSV field: null → empty; a text cell that would start a formula gets a leading `'` (OWASP's
 * rule for CSV injection: shown as text, never evaluated) — numbers, and strings that are plain
 * numbers, stay numbers; quoted when it holds a comma, quote or line break.
 * @example csvField('=HYPERLINK("x")') // `"'=HYPERLINK(""x"")"`; csvField(-5) // '-5'
 */
export function csvField(value: string | number | boolean | null): string {
  let text = value === null ? '' : String(value)
  if (typeof value === 'string' && FORMULA_START.test(text) && !PLAIN_NUMBER.test(text))
    text = `'${text}`
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
