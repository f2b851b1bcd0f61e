/**
 * 商城订单 → 订单: the orders, newest first and paged (`pageOrders`), filtered by status or found
 * by their number (out_trade_no or WeChat Pay's transaction_id); each links to its page.
 */
import { pageOrders } from '../../admin/reads/shop-orders.js'
import { ORDER_STATUSES } from '../../admin/reads/shop-reads.js'
import type { OrderStatus } from '../../db/schema.js'
import { DataTable } from '../components/data-table.js'
import { Field, Notice } from '../components/form.js'
import { beforeOf, Pager } from '../components/pager.js'
import { Select } from '../components/select.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { PAGE, ShopTabs, shopOf } from './shop-kit.js'

const PATH = '/shop/orders'
/** The longest number searched (out_trade_no is at most 32, transaction_id 32). */
const NUMBER_MAX = 64

/** An order's page. */
export const orderHref = (no: string) => `/console/shop/orders/${encodeURIComponent(no)}`

export const shopOrdersPage: ConsolePage = {
  section: 'shop',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => {
      const { t, fmt } = c.var
      const shop = shopOf(deps)
      const asked = c.req.query('status') ?? ''
      const status = ORDER_STATUSES.find((s) => s === asked) as OrderStatus | undefined
      const number = (c.req.query('q') ?? '').trim()
      const tooLong = number.length > NUMBER_MAX
      const page = tooLong
        ? { orders: [], more: false }
        : await pageOrders(deps.db, shop.settings.appid, {
            status,
            number: number || undefined,
            before: beforeOf(c),
            limit: PAGE,
          })
      return renderPage(
        c,
        { title: t('shop.orders'), section: 'shop' },
        <>
          <ShopTabs t={t} current="/console/shop/orders" appid={shop.settings.appid} />
          <section class="card">
            <form method="get" action={`/console${PATH}`} class="filters">
              <Field id="order-q" label={t('shop.order.search')} hint={t('shop.order.searchHint')}>
                <input
                  id="order-q"
                  name="q"
                  type="search"
                  value={number}
                  maxlength={NUMBER_MAX}
                  autocomplete="off"
                  aria-describedby="order-q-hint"
                />
              </Field>
              <Field id="order-status" label={t('shop.order.status')}>
                <Select
                  id="order-status"
                  name="status"
                  value={status ?? ''}
                  options={[
                    ['', t('shop.all')],
                    ...ORDER_STATUSES.map((s): [string, string] => [s, t(`shop.orderStatus.${s}`)]),
                  ]}
                />
              </Field>
              <button type="submit">{t('shop.order.find')}</button>
            </form>
          </section>
          <Notice
            kind="error"
            text={tooLong ? t('shop.order.tooLong', { max: NUMBER_MAX }) : undefined}
          />
          <section class="card" aria-labelledby="orders" aria-live="polite">
            <h2 id="orders">{t('shop.orders')}</h2>
            <DataTable
              rows={page.orders}
              empty={number ? t('shop.order.notFound', { q: number }) : t('common.empty')}
              columns={[
                {
                  label: t('shop.order.no'),
                  cell: (o) => (
                    <a href={orderHref(o.out_trade_no)} style="overflow-wrap:anywhere">
                      {o.out_trade_no}
                    </a>
                  ),
                },
                { label: t('shop.order.item'), cell: (o) => o.description },
                { label: t('shop.order.member'), cell: (o) => o.openid ?? '' },
                { label: t('shop.order.amount'), num: true, cell: (o) => fmt.fen(o.amount_fen) },
                {
                  label: t('shop.order.refunded'),
                  num: true,
                  cell: (o) => (o.refunded_fen > 0 ? fmt.fen(o.refunded_fen) : '—'),
                },
                { label: t('shop.order.status'), cell: (o) => t(`shop.orderStatus.${o.status}`) },
                { label: t('shop.order.created'), cell: (o) => fmt.dateTime(o.created_at) },
              ]}
            />
            <Pager
              c={c}
              path={`/console${PATH}`}
              keep={['status', 'q']}
              older={page.more ? page.orders.at(-1)?.id : undefined}
            />
          </section>
        </>,
      )
    })
  },
}
