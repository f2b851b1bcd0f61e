/**
 * The order page's cards: the order's line and state, the refund form and its confirmation, and
 * its history (refunds with their queue state, WeChat Pay notifications, what it granted).
 */

import type { OrderDetail } from '../../admin/reads/shop-orders.js'
import { refundQueueState } from '../../admin/reads/shop-refunds.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Field } from '../components/form.js'
import type { Format } from '../format.js'
import type { Translate } from '../i18n.js'
import { memberHref } from './members.js'
import type { RefundFormValues } from './shop-order.js'
import { RefundQueueCell } from './shop-refunds.js'

interface Props {
  t: Translate
  fmt: Format
}

/**
 * The order: its line, amounts and state. Its member's link names their account: the shop's for a
 * member of its mini program `mpAppid` (`mp=1`), else the follower's own (a unionid or 绑定 may
 * have linked the buyer to another account's follower).
 */
export function OrderFacts(p: Props & { d: OrderDetail; mpAppid: string }) {
  const { t, fmt } = p
  const { order: o, groupBuy } = p.d
  const member =
    o.openid === null
      ? undefined
      : o.member_appid === p.mpAppid
        ? memberHref(o.openid, o.appid, true)
        : memberHref(o.openid, o.member_appid ?? o.appid)
  const at = (d: Date | null) => (d ? fmt.dateTime(d) : '—')
  return (
    <section class="card" aria-labelledby="order">
      <h2 id="order">{t('shop.order.facts')}</h2>
      <DataTable
        rows={[o]}
        empty={t('common.empty')}
        columns={[
          {
            label: t('shop.order.item'),
            cell: () => (
              <a href={`/console/shop/products/${encodeURIComponent(o.sku)}`}>{o.description}</a>
            ),
          },
          { label: t('shop.product.kind'), cell: () => t(`shop.kind.${o.kind}`) },
          { label: t('shop.order.amount'), num: true, cell: () => fmt.fen(o.amount_fen) },
          {
            label: t('shop.order.paidTotal'),
            num: true,
            cell: () => (o.paid_total_fen === null ? '—' : fmt.fen(o.paid_total_fen)),
          },
          {
            label: t('shop.order.refunded'),
            num: true,
            cell: () => fmt.fen(o.refunded_fen),
          },
        ]}
      />
      <ul class="list">
        <li>
          {t('shop.order.status')}：<strong>{t(`shop.orderStatus.${o.status}`)}</strong>
          {o.flag_reason && <span class="muted">（{o.flag_reason}）</span>}
        </li>
        <li>
          {t('shop.order.member')}：{member ? <a href={member}>{o.openid}</a> : '—'}
          <span class="muted">
            {' '}
            · {t('shop.order.mpOpenid')} {o.mp_openid}
          </span>
        </li>
        <li style="overflow-wrap:anywhere">
          {t('shop.order.transaction')}：{o.transaction_id ?? '—'}
        </li>
        <li>
          {t('shop.order.created')} {at(o.created_at)} · {t('shop.order.paid')} {at(o.paid_at)} ·{' '}
          {t('shop.order.closed')} {at(o.closed_at)} · {t('shop.order.expires')} {at(o.expires_at)}
        </li>
        {groupBuy && (
          <li>
            {t('shop.order.groupBuy')}：#{groupBuy.id} ·{' '}
            {t('shop.groupBuy.progressText', {
              paid: groupBuy.paid,
              joined: groupBuy.joined,
              needed: groupBuy.size_required,
              max: groupBuy.size_max,
            })}{' '}
            · {t(`shop.groupBuy.${groupBuy.status}`)}
          </li>
        )}
      </ul>
    </section>
  )
}

/** The refund form (first step: nothing changes until the confirmation). */
export function RefundForm(
  p: Props & { action: string; csrf: string; refundable: number; values: RefundFormValues },
) {
  const { t, fmt } = p
  return (
    <section class="card" aria-labelledby="refund">
      <h2 id="refund">{t('shop.refund.title')}</h2>
      {p.refundable === 0 ? (
        <p class="muted">{t('shop.refund.none')}</p>
      ) : (
        <form method="post" action={p.action} class="stack" novalidate>
          <CsrfField token={p.csrf} />
          <input type="hidden" name="key" value={p.values.key} />
          <Field
            id="refund-amount"
            label={t('shop.refund.amount')}
            hint={t('shop.refund.amountHint', { refundable: fmt.fen(p.refundable) })}
          >
            <input
              id="refund-amount"
              name="amount"
              value={p.values.amount}
              inputmode="decimal"
              maxlength={12}
              required
              autocomplete="off"
              aria-describedby="refund-amount-hint"
            />
          </Field>
          <Field
            id="refund-reason"
            label={t('shop.refund.reason')}
            hint={t('shop.refund.reasonHint')}
          >
            <input
              id="refund-reason"
              name="reason"
              value={p.values.reason}
              maxlength={80}
              required
              autocomplete="off"
              aria-describedby="refund-reason-hint"
            />
          </Field>
          <button type="submit">{t('shop.refund.review')}</button>
        </form>
      )}
    </section>
  )
}

/** The confirmation step: what will be refunded, and the button that does it. */
export function RefundConfirm(
  p: Props & {
    action: string
    csrf: string
    no: string
    amountFen: number
    reason: string
    refundKey: string
  },
) {
  const { t, fmt } = p
  return (
    <section class="card confirm" aria-labelledby="refund-confirm" role="alertdialog">
      <h2 id="refund-confirm">{t('shop.refund.confirmTitle')}</h2>
      <p>
        {t('shop.refund.confirmText', { amount: fmt.fen(p.amountFen), no: p.no, reason: p.reason })}
      </p>
      <form method="post" action={p.action} class="actions">
        <CsrfField token={p.csrf} />
        <input type="hidden" name="key" value={p.refundKey} />
        <input type="hidden" name="amount" value={(p.amountFen / 100).toFixed(2)} />
        <input type="hidden" name="reason" value={p.reason} />
        <input type="hidden" name="confirm" value="1" />
        <button type="submit">{t('shop.refund.confirm')}</button>
        <a href={`/console/shop/orders/${encodeURIComponent(p.no)}`}>{t('shop.refund.cancel')}</a>
      </form>
    </section>
  )
}

/** Refunds (with their queue state), WeChat Pay notifications and what the purchase granted. */
export function OrderHistory(p: Props & { d: OrderDetail }) {
  const { t, fmt } = p
  const { refunds, events, grant } = p.d
  return (
    <>
      <section class="card" aria-labelledby="refunds">
        <h2 id="refunds">{t('shop.refunds')}</h2>
        <DataTable
          rows={refunds}
          empty={t('shop.refund.empty')}
          columns={[
            {
              label: t('shop.refund.no'),
              cell: (r) => <span style="overflow-wrap:anywhere">{r.out_refund_no}</span>,
            },
            { label: t('shop.refund.amount'), num: true, cell: (r) => fmt.fen(r.amount_fen) },
            { label: t('shop.refund.reason'), cell: (r) => r.reason },
            {
              label: t('shop.refund.queue'),
              cell: (r) => (
                <RefundQueueCell t={t} fmt={fmt} r={{ ...r, state: refundQueueState(r) }} />
              ),
            },
            { label: t('shop.refund.created'), cell: (r) => fmt.dateTime(r.created_at) },
          ]}
        />
      </section>
      <section class="card" aria-labelledby="events">
        <h2 id="events">{t('shop.order.events')}</h2>
        <DataTable
          rows={events}
          empty={t('shop.order.eventsEmpty')}
          columns={[
            { label: t('shop.order.eventAt'), cell: (e) => fmt.dateTime(e.received_at) },
            { label: t('shop.order.eventType'), cell: (e) => e.event_type },
            { label: t('shop.order.eventOutcome'), cell: (e) => e.outcome },
            {
              label: t('shop.order.eventId'),
              cell: (e) => <span style="overflow-wrap:anywhere">{e.id}</span>,
            },
          ]}
        />
      </section>
      {grant && (
        <section class="card" aria-labelledby="grant">
          <h2 id="grant">{t('shop.order.grant')}</h2>
          <p>
            {t('shop.order.grantText', {
              points: fmt.count(grant.points),
              status: t(`shop.grant.${grant.points_status}`),
              takenBack: fmt.count(grant.points_taken_back),
              shortfall: fmt.count(grant.points_shortfall),
              releases: fmt.dateTime(grant.releases_at),
            })}
          </p>
        </section>
      )}
    </>
  )
}
