/**
 * 商城订单 → 退款: every refund, newest first and paged (`pageRefunds`), with where it stands in
 * the refund queue — waiting to be sent, retrying (attempts, next try, WeChat Pay's last answer),
 * accepted and polled, settled, or needing an operator (failed, abnormal) — and the counts by
 * status (`refundCounts`).
 */
import {
  pageRefunds,
  REFUND_VIEWS,
  type RefundQueueState,
  type RefundView,
  refundCounts,
} from '../../admin/reads/shop-refunds.js'
import { REFUND_MAX_ATTEMPTS } from '../../shop/refunds.js'
import { DataTable } from '../components/data-table.js'
import { beforeOf, Pager } from '../components/pager.js'
import type { Format } from '../format.js'
import type { Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { PAGE, SelectFilter, ShopTabs, shopOf } from './shop-kit.js'
import { orderHref } from './shop-orders.js'

const PATH = '/shop/refunds'
const VIEWS = Object.keys(REFUND_VIEWS) as RefundView[]
const STATUSES = ['requested', 'processing', 'success', 'closed', 'failed', 'abnormal'] as const

/** A refund's queue state in words: the state, then attempts, next try or poll, last error. */
export function RefundQueueCell(p: {
  t: Translate
  fmt: Format
  r: {
    state: RefundQueueState
    attempts: number
    next_attempt_at: Date | null
    error: string | null
  }
}) {
  const { t, fmt, r } = p
  const next =
    r.next_attempt_at &&
    (r.state === 'queued' || r.state === 'retrying' || r.state === 'processing')
      ? t(r.state === 'processing' ? 'shop.refund.nextPoll' : 'shop.refund.nextTry', {
          at: fmt.dateTime(r.next_attempt_at),
        })
      : undefined
  return (
    <span style="overflow-wrap:anywhere">
      <strong>{t(`shop.refundState.${r.state}`)}</strong>
      {r.attempts > 0 && (
        <span class="muted">
          {' '}
          · {t('shop.refund.attempts', { n: r.attempts, max: REFUND_MAX_ATTEMPTS })}
        </span>
      )}
      {next && <span class="muted"> · {next}</span>}
      {r.error && <span class="muted"> · {r.error.slice(0, 160)}</span>}
    </span>
  )
}

export const shopRefundsPage: ConsolePage = {
  section: 'shop',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => {
      const { t, fmt } = c.var
      const shop = shopOf(deps)
      const appid = shop.settings.appid
      const asked = c.req.query('view') ?? 'all'
      const view = VIEWS.find((x) => x === asked) ?? 'all'
      const [page, counts] = await Promise.all([
        pageRefunds(deps.db, appid, { view, before: beforeOf(c), limit: PAGE }),
        refundCounts(deps.db, appid),
      ])
      return renderPage(
        c,
        { title: t('shop.refunds'), section: 'shop' },
        <>
          <ShopTabs t={t} current="/console/shop/refunds" appid={appid} />
          <section class="card" aria-labelledby="queue">
            <h2 id="queue">{t('shop.refund.queueSummary')}</h2>
            <p class="muted">{t('shop.refund.queueHint', { max: REFUND_MAX_ATTEMPTS })}</p>
            <ul class="list">
              {STATUSES.map((s) => (
                <li>
                  {t('common.fact', {
                    label: t(`shop.refundStatus.${s}`),
                    value: fmt.count(counts[s] ?? 0),
                  })}
                </li>
              ))}
            </ul>
            <SelectFilter
              t={t}
              action={`/console${PATH}`}
              id="refund-view"
              name="view"
              label={t('shop.refund.view')}
              value={view}
              options={VIEWS.map((x): [string, string] => [x, t(`shop.refundView.${x}`)])}
            />
          </section>
          <section class="card" aria-labelledby="refund-list">
            <h2 id="refund-list">{t('shop.refunds')}</h2>
            <DataTable
              rows={page.refunds}
              empty={t('common.empty')}
              columns={[
                {
                  label: t('shop.order.no'),
                  cell: (r) => (
                    <a href={orderHref(r.out_trade_no)} style="overflow-wrap:anywhere">
                      {r.out_trade_no}
                    </a>
                  ),
                },
                {
                  label: t('shop.refund.no'),
                  cell: (r) => <span style="overflow-wrap:anywhere">{r.out_refund_no}</span>,
                },
                { label: t('shop.refund.amount'), num: true, cell: (r) => fmt.fen(r.amount_fen) },
                { label: t('shop.refund.reason'), cell: (r) => r.reason },
                {
                  label: t('shop.refund.queue'),
                  cell: (r) => <RefundQueueCell t={t} fmt={fmt} r={r} />,
                },
                { label: t('shop.refund.created'), cell: (r) => fmt.dateTime(r.created_at) },
              ]}
            />
            <Pager
              c={c}
              path={`/console${PATH}`}
              keep={['view']}
              older={page.more ? page.refunds.at(-1)?.id : undefined}
            />
          </section>
        </>,
      )
    })
  },
}
