/** The reconciliation page's tables: a day's runs with their totals, and mismatches (resolvable). */
import type { mismatchView, reconciliationReport } from '../../shop/reconciliation-report.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField } from '../components/form.js'
import type { Format } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'

type Run = Awaited<ReturnType<typeof reconciliationReport>>['runs'][number]
type Mismatch = ReturnType<typeof mismatchView>

interface Tally {
  count: number
  fen: number
}
/** `totals` as src/shop/reconcile.ts stores it. */
interface Totals {
  summary?: { column: string; ok: boolean }[]
  bill?: Record<string, Tally>
  ours?: Record<string, Tally>
}

/** A bill's or our tallies in words: `收款 3 笔 ¥29.70；退款 1 笔 ¥9.90`. */
function tallies(t: Translate, fmt: Format, of: Record<string, Tally> | undefined) {
  if (!of) return '—'
  return (
    Object.entries(of)
      .filter(([, x]) => x.count > 0)
      .map(([k, x]) =>
        t('shop.rec.tally', {
          what: t(`shop.rec.entry.${k}` as MessageKey),
          count: fmt.count(x.count),
          fen: fmt.fen(x.fen),
        }),
      )
      .join('；') || t('shop.rec.noLines')
  )
}

/** The day's runs: status, lines, mismatches, the bill's totals against ours, the summary checks. */
export function RunTable(p: { t: Translate; fmt: Format; runs: Run[] }) {
  const { t, fmt } = p
  return (
    <DataTable
      rows={p.runs}
      empty={t('shop.rec.noRuns')}
      columns={[
        { label: t('shop.rec.kind'), cell: (r) => t(`shop.rec.kind.${r.kind}`) },
        {
          label: t('shop.rec.status'),
          cell: (r) => (
            <span style="overflow-wrap:anywhere">
              {t(`shop.rec.status.${r.status}`)}
              {r.error && <span class="muted"> · {r.error.slice(0, 160)}</span>}
            </span>
          ),
        },
        { label: t('shop.rec.lines'), num: true, cell: (r) => fmt.count(r.lines) },
        {
          label: t('shop.rec.mismatches'),
          num: true,
          cell: (r) => t('shop.rec.mismatchCount', { n: r.mismatches, open: r.open }),
        },
        {
          label: t('shop.rec.billTotals'),
          cell: (r) => tallies(t, fmt, (r.totals as Totals | null)?.bill),
        },
        {
          label: t('shop.rec.ourTotals'),
          cell: (r) => tallies(t, fmt, (r.totals as Totals | null)?.ours),
        },
        {
          label: t('shop.rec.summary'),
          cell: (r) => {
            const checks = (r.totals as Totals | null)?.summary ?? []
            const bad = checks.filter((x) => !x.ok).map((x) => x.column)
            if (checks.length === 0) return '—'
            return bad.length === 0
              ? t('shop.rec.summaryOk')
              : t('shop.rec.summaryBad', { columns: bad.join('、') })
          },
        },
        {
          label: t('shop.rec.reconciledAt'),
          cell: (r) => (r.reconciledAt ? fmt.dateTime(new Date(r.reconciledAt)) : '—'),
        },
      ]}
    />
  )
}

/** Mismatches; with `resolve`, each open one carries a note field and a resolve button. */
export function MismatchTable(p: {
  t: Translate
  fmt: Format
  rows: Mismatch[]
  resolve?: { csrf: string; action: string; date: string }
  /** A refused note, shown again in its row. */
  note?: { id: number; text: string }
}) {
  const { t, fmt, resolve } = p
  const amount = (x: number | null) => (x === null ? '—' : fmt.fen(x))
  return (
    <DataTable
      rows={p.rows}
      empty={t('shop.rec.noMismatches')}
      columns={[
        { label: t('shop.rec.id'), num: true, cell: (m) => `#${m.id}` },
        ...(p.rows.some((m) => m.billDate)
          ? [{ label: t('shop.rec.billDate'), cell: (m: Mismatch) => m.billDate ?? '' }]
          : []),
        { label: t('shop.rec.mismatchKind'), cell: (m) => t(`shop.rec.mk.${m.kind}`) },
        {
          label: t('shop.rec.key'),
          cell: (m) =>
            m.outTradeNo ? (
              <a
                href={`/console/shop/orders/${encodeURIComponent(m.outTradeNo)}`}
                style="overflow-wrap:anywhere"
              >
                {m.outRefundNo ?? m.outTradeNo}
              </a>
            ) : (
              <span style="overflow-wrap:anywhere">{m.outRefundNo ?? m.transactionId ?? ''}</span>
            ),
        },
        { label: t('shop.rec.theirs'), num: true, cell: (m) => amount(m.theirFen) },
        { label: t('shop.rec.ours'), num: true, cell: (m) => amount(m.ourFen) },
        {
          label: t('shop.rec.detail'),
          cell: (m) => <span style="overflow-wrap:anywhere">{m.detail}</span>,
        },
        {
          label: t('shop.rec.state'),
          cell: (m) =>
            m.status === 'resolved' ? (
              <span style="overflow-wrap:anywhere">
                {t('shop.rec.resolvedState')}
                {m.note && <span class="muted"> · {m.note}</span>}
              </span>
            ) : resolve ? (
              <form method="post" action={`${resolve.action}/${m.id}`} class="actions">
                <CsrfField token={resolve.csrf} />
                <input type="hidden" name="date" value={resolve.date} />
                <label for={`note-${m.id}`}>{t('shop.rec.note')}</label>
                <input
                  id={`note-${m.id}`}
                  name="note"
                  maxlength={500}
                  required
                  value={p.note?.id === m.id ? p.note.text : ''}
                  aria-invalid={p.note?.id === m.id ? 'true' : undefined}
                />
                <button type="submit" aria-label={t('shop.rec.resolveLabel', { id: m.id })}>
                  {t('shop.rec.resolve')}
                </button>
              </form>
            ) : (
              t('shop.rec.openState')
            ),
        },
      ]}
    />
  )
}
