/**
 * 商城订单 → one order (`orderDetail`): its line and state, the WeChat Pay notifications applied to
 * it, what the purchase granted, its refunds with their queue state — and the refund form for
 * operators and owners. A refund is asked for, reviewed on a confirmation step, then made by
 * `refundOrder` (validated by `refundOrderInput`, the API's schema) with a number derived from the
 * form's idempotency key (`refundNumber`): submitting the same confirmation twice is one refund.
 */
import * as v from 'valibot'
import { refundNumber, refundOrder, refundOrderInput } from '../../admin/actions/refund-actions.js'
import { type OrderDetail, orderDetail } from '../../admin/reads/shop-orders.js'
import { Notice } from '../components/form.js'
import {
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  requireRole,
} from '../context.js'
import type { MessageKey } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { ShopTabs, shopOf, yuanToFen } from './shop-kit.js'
import { OrderFacts, OrderHistory, RefundConfirm, RefundForm } from './shop-order-sections.js'
import { orderHref } from './shop-orders.js'

const PATH = '/shop/orders/:no'
const KEY = /^[\w-]{1,64}$/

/** The refund form as typed. */
export interface RefundFormValues {
  amount: string
  reason: string
  key: string
}

/** What the page shows besides the order: a refused or to-be-confirmed refund. */
interface Shown {
  form?: RefundFormValues
  error?: string
  confirm?: { amountFen: number; reason: string }
}

async function detailOf(c: ConsoleContext, deps: ConsoleDeps): Promise<OrderDetail> {
  const shop = shopOf(deps)
  const d = await orderDetail(deps.db, shop.settings.appid, c.req.param('no') ?? '')
  if (!d) throw new ConsoleRefusal(404, 'shop.error.noOrder')
  return d
}

function show(c: ConsoleContext, deps: ConsoleDeps, d: OrderDetail, s: Shown = {}) {
  const { t, fmt, session } = c.var
  const acts = session.operator.role !== 'viewer'
  const q = c.req.query()
  const done = q.refund
    ? t(q.existing ? 'shop.refund.existing' : 'shop.refund.done', {
        no: q.refund,
        state: t(`shop.refundState.${q.state ?? 'queued'}` as MessageKey),
      })
    : undefined
  const form: RefundFormValues = s.form ?? {
    amount: (d.refundable / 100).toFixed(2),
    reason: '',
    key: crypto.randomUUID(),
  }
  return renderPage(
    c,
    { title: t('shop.order.title', { no: d.order.out_trade_no }), section: 'shop' },
    <>
      <ShopTabs t={t} current="/console/shop/orders" appid={shopOf(deps).settings.appid} />
      <p>
        <a href="/console/shop/orders">← {t('shop.orders')}</a>
      </p>
      <Notice kind="ok" text={done} />
      <Notice kind="error" text={s.error} />
      {s.confirm && acts && (
        <RefundConfirm
          t={t}
          fmt={fmt}
          action={`${orderHref(d.order.out_trade_no)}/refunds`}
          csrf={session.csrfToken}
          no={d.order.out_trade_no}
          amountFen={s.confirm.amountFen}
          reason={s.confirm.reason}
          refundKey={form.key}
        />
      )}
      <OrderFacts t={t} fmt={fmt} d={d} mpAppid={shopOf(deps).settings.mpAppid} />
      {acts && !s.confirm && (
        <RefundForm
          t={t}
          fmt={fmt}
          action={`${orderHref(d.order.out_trade_no)}/refunds`}
          csrf={session.csrfToken}
          refundable={d.refundable}
          values={form}
        />
      )}
      <OrderHistory t={t} fmt={fmt} d={d} />
    </>,
    s.error ? 400 : 200,
  )
}

export const shopOrderPage: ConsolePage = {
  section: 'shop',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, async (c) => show(c, deps, await detailOf(c, deps)))

    app.post(`${PATH}/refunds`, requireRole('owner', 'operator'), async (c) => {
      const { t, fmt } = c.var
      const shop = shopOf(deps)
      const d = await detailOf(c, deps)
      const body = await c.req.parseBody()
      const text = (k: string) => (typeof body[k] === 'string' ? (body[k] as string).trim() : '')
      const form = { amount: text('amount'), reason: text('reason'), key: text('key') }
      const refuse = (key: MessageKey, params?: Record<string, string>) =>
        show(c, deps, d, { form, error: t(key, params) })
      if (!KEY.test(form.key)) return refuse('shop.error.refundKey')
      const parsed = v.safeParse(refundOrderInput, {
        amountFen: yuanToFen(form.amount),
        reason: form.reason,
      })
      if (!parsed.success) {
        const field = parsed.issues[0]?.path?.[0]?.key
        return refuse(field === 'reason' ? 'shop.error.reason' : 'shop.error.amount')
      }
      const { amountFen, reason } = parsed.output
      // The review step changes nothing; the confirmation carries the same key.
      if (body.confirm !== '1') {
        if (d.refundable === 0) return refuse('shop.error.notRefundable')
        if (amountFen > d.refundable)
          return refuse('shop.error.tooMuch', { refundable: fmt.fen(d.refundable) })
        return show(c, deps, d, { form, confirm: { amountFen, reason } })
      }
      const outTradeNo = d.order.out_trade_no
      const outRefundNo = await refundNumber(outTradeNo, form.key)
      const result = await refundOrder({ ...deps, shop }, actorOf(c), {
        amountFen,
        reason,
        outTradeNo,
        outRefundNo,
      })
      if (result.status === 'not_found') throw new ConsoleRefusal(404, 'shop.error.noOrder')
      if (!('outRefundNo' in result))
        return result.status === 'too_much'
          ? refuse('shop.error.tooMuch', { refundable: fmt.fen(result.refundable ?? 0) })
          : refuse('shop.error.notRefundable')
      const state = result.refundStatus === 'requested' ? 'queued' : result.refundStatus
      const query = new URLSearchParams({ refund: result.outRefundNo, state })
      if (result.status === 'existing') query.set('existing', '1')
      return c.redirect(`${orderHref(outTradeNo)}?${query}`, 303)
    })
  },
}
