/**
 * WeChat Pay's bill files (交易账单, 资金账单) as text: a plain header line, detail lines whose
 * every field is prefixed with a backtick (so Excel keeps long numbers), and two summary lines
 * (plain header, backticked values). Columns are mapped by header name, never by position: some
 * merchants still get the early format (总金额 / 企业红包金额 instead of 应结订单金额 / 代金券金额).
 * Amounts are yuan as decimal text; they are converted to integer fen from the digits, never
 * through a float. A hand-written reader is enough for this format (fields never quoted, split on
 * ``,` ``), so no CSV package is used. Portable: no Node APIs.
 */

/** A bill that does not follow the format (the message names the line and column). */
export class BillFormatError extends Error {
  override readonly name = 'BillFormatError'
}

/** A parsed bill: detail rows and the summary, each keyed by its header's column names. */
export interface BillFile {
  header: string[]
  rows: Record<string, string>[]
  summaryHeader: string[]
  summary: Record<string, string>
}

const splitPlain = (line: string) => line.split(',').map((f) => f.trim())

function splitTicked(line: string, where: string): string[] {
  if (!line.startsWith('`'))
    throw new BillFormatError(`${where}: fields must start with a backtick`)
  return line.slice(1).split(',`')
}

/**
 * Parses a bill's text: a UTF-8 BOM is dropped, lines split on `\r?\n`, blank trailing lines
 * ignored, the first line is the header, the last two the summary.
 * @example parseBill('交易时间,商户订单号\n`2025-01-01 10:00:00,`QZ1\n总交易单数\n`1\n').rows
 *   // → [{ 交易时间: '2025-01-01 10:00:00', 商户订单号: 'QZ1' }]
 */
export function parseBill(text: string): BillFile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  while (lines.length > 0 && lines.at(-1)!.trim() === '') lines.pop()
  if (lines.length < 3)
    throw new BillFormatError(`a bill has a header and two summary lines; got ${lines.length}`)
  const header = splitPlain(lines[0]!)
  const summaryHeader = splitPlain(lines.at(-2)!)
  const keyed = (names: string[], values: string[], where: string) => {
    if (values.length !== names.length)
      throw new BillFormatError(`${where}: ${values.length} fields, the header has ${names.length}`)
    return Object.fromEntries(names.map((n, i) => [n, values[i]!]))
  }
  const rows = lines
    .slice(1, -2)
    .map((line, i) => keyed(header, splitTicked(line, `line ${i + 2}`), `line ${i + 2}`))
  const summary = keyed(summaryHeader, splitTicked(lines.at(-1)!, 'summary line'), 'summary line')
  return { header, rows, summaryHeader, summary }
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/

/**
 * An amount in yuan as written in a bill (`0.10`, `1990.00`, `-0.18`, `20.0`) in integer fen,
 * exactly. Digits past the fen must be zeros; anything else is a {@link BillFormatError}.
 * @example yuanToFen('0.10') // → 10
 */
export function yuanToFen(yuan: string): number {
  const m = DECIMAL.exec(yuan.trim())
  if (!m) throw new BillFormatError(`not an amount: ${JSON.stringify(yuan)}`)
  const decimals = m[3] ?? ''
  if (/[^0]/.test(decimals.slice(2)))
    throw new BillFormatError(`not a whole number of fen: ${yuan}`)
  const fen = Number(m[2]) * 100 + Number(decimals.slice(0, 2).padEnd(2, '0'))
  if (!Number.isSafeInteger(fen)) throw new BillFormatError(`amount too large: ${yuan}`)
  return m[1] === '-' && fen !== 0 ? -fen : fen
}

/** Scale of {@link decimalUnits}: fees may have more decimals than fen (e.g. `0.00600`). */
const SCALE = 8

/** A decimal amount as an exact integer of 10⁻⁸ units, for sums of columns such as fees. */
function decimalUnits(value: string, where: string): bigint {
  const m = DECIMAL.exec(value.trim())
  if (!m) throw new BillFormatError(`${where}: not an amount: ${JSON.stringify(value)}`)
  const decimals = m[3] ?? ''
  if (decimals.length > SCALE) throw new BillFormatError(`${where}: too many decimals: ${value}`)
  const units = BigInt(m[2]!) * 10n ** BigInt(SCALE) + BigInt(decimals.padEnd(SCALE, '0') || '0')
  return m[1] === '-' ? -units : units
}

/** 10⁻⁸ units back to a yuan text with at least two decimals. */
function unitsText(units: bigint): string {
  const negative = units < 0n
  const abs = negative ? -units : units
  const whole = abs / 10n ** BigInt(SCALE)
  const fraction = (abs % 10n ** BigInt(SCALE)).toString().padStart(SCALE, '0').replace(/0+$/, '')
  return `${negative ? '-' : ''}${whole}.${fraction.padEnd(2, '0')}`
}

/** How a summary column is computed from the detail rows. */
interface SummaryRule {
  summary: string
  /** `count` of the rows (those `where` selects), or the sum of a detail column. */
  of: { count: true } | { sum: string }
  where?: (row: Record<string, string>) => boolean
}

const count = { count: true } as const
const sum = (column: string) => ({ sum: column })
const isIncome = (r: Record<string, string>) => r.收支类型 === '收入'
const isExpense = (r: Record<string, string>) => r.收支类型 === '支出'

/**
 * Summary columns and what they total, for both bills and both trade-bill formats (the current
 * one and the early one); a rule applies when the bill has its columns.
 */
const SUMMARY_RULES: SummaryRule[] = [
  // trade bill (current format)
  { summary: '总交易单数', of: count },
  { summary: '应结订单总金额', of: sum('应结订单金额') },
  { summary: '退款总金额', of: sum('退款金额') },
  { summary: '充值券退款总金额', of: sum('充值券退款金额') },
  { summary: '手续费总金额', of: sum('手续费') },
  { summary: '订单总金额', of: sum('订单金额') },
  { summary: '申请退款总金额', of: sum('申请退款金额') },
  // trade bill (early format)
  { summary: '总交易额', of: sum('总金额') },
  { summary: '总退款金额', of: sum('退款金额') },
  { summary: '总企业红包退款金额', of: sum('企业红包退款金额') },
  // fund-flow bill
  { summary: '资金流水总笔数', of: count },
  { summary: '收入笔数', of: count, where: isIncome },
  { summary: '收入金额', of: sum('收支金额(元)'), where: isIncome },
  { summary: '支出笔数', of: count, where: isExpense },
  { summary: '支出金额', of: sum('收支金额(元)'), where: isExpense },
]

/** One summary column against the sum of the detail rows. */
export interface SummaryCheck {
  column: string
  /** As the bill's summary line says, and as its rows add up (counts, or yuan text). */
  bill: string
  lines: string
  ok: boolean
}

/**
 * Checks every summary column this module knows against the detail rows (counts exactly, sums
 * as exact decimals). Unknown summary columns are left out.
 */
export function checkSummary(bill: BillFile): SummaryCheck[] {
  const checks: SummaryCheck[] = []
  for (const rule of SUMMARY_RULES) {
    if (!(rule.summary in bill.summary)) continue
    const rows = rule.where ? bill.rows.filter(rule.where) : bill.rows
    const stated = bill.summary[rule.summary]!.trim()
    if ('count' in rule.of) {
      const ok = /^\d+$/.test(stated) && Number(stated) === rows.length
      checks.push({ column: rule.summary, bill: stated, lines: String(rows.length), ok })
      continue
    }
    const column = rule.of.sum
    if (!bill.header.includes(column)) continue
    let total = 0n
    rows.forEach((r, i) => {
      // An empty field counts as nothing (some rows leave columns they do not use blank).
      const v = r[column]!.trim()
      if (v !== '') total += decimalUnits(v, `line ${i + 2} ${column}`)
    })
    const ok = decimalUnits(stated, `summary ${rule.summary}`) === total
    checks.push({ column: rule.summary, bill: stated, lines: unitsText(total), ok })
  }
  return checks
}
