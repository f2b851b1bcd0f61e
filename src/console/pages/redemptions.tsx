/**
 * 积分商城 → 兑换记录: the account's redemptions, newest first and paged, a redemption found by the
 * exact code a member quotes, and its cancellation after a confirmation step — `cancelRedemption`,
 * the API's action (points back through the ledger, stock restored, a cashback's transfer
 * cancelled at WeChat Pay first). Operators and owners cancel.
 */
import { cancelRedemption } from '../../admin/actions/redemption-actions.js'
import {
  listRedemptions,
  type RedemptionRow,
  redemptionByCode,
  redemptionById,
  redemptionRefund,
} from '../../admin/reads/reward-reads.js'
import { translator } from '../../bot/i18n.js'
import { type Column, DataTable } from '../components/data-table.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import { beforeOf, keepAccount, Pager } from '../components/pager.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  requireRole,
} from '../context.js'
import type { Format } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { memberHref } from './members.js'
import { PAGE, RewardsTabs } from './reward-tabs.js'

const PATH = '/rewards/redemptions'
/** What a typed code may be: letters and digits (issued codes are 10, upper case). */
const CODE = /^[A-Za-z0-9]{1,40}$/

const cancelHref = (c: ConsoleContext, r: RedemptionRow) =>
  keepAccount(c, `/console${PATH}/${r.id}/cancel`)

/** The columns of a redemption; `cancel` adds the link to the confirmation step. */
function columns(
  c: ConsoleContext,
  t: Translate,
  fmt: Format,
  cancel: boolean,
): Column<RedemptionRow>[] {
  const keep = c.req.query('appid')
  const account = accountOf(c)
  return [
    { label: t('rewards.redemptionCode'), cell: (r) => <code>{r.code}</code> },
    { label: t('rewards.reward'), cell: (r) => `${r.rewardCode} ${r.rewardName}` },
    {
      label: t('rewards.member'),
      cell: (r) => (
        <a
          href={
            r.memberAppid === account
              ? memberHref(r.openid, keep)
              : memberHref(r.openid, account, true)
          }
          class="wrap"
        >
          {r.displayName ?? r.openid}
        </a>
      ),
    },
    { label: t('rewards.cost'), num: true, cell: (r) => fmt.count(r.cost) },
    {
      label: t('rewards.status'),
      cell: (r) => (
        <>
          {t(`rewards.status.${r.status}`)}
          {r.transferState && (
            <span class="muted">
              {' '}
              ·{' '}
              {t('common.fact', {
                label: t('rewards.transfer'),
                value: t(`rewards.transfer.${r.transferState}`),
              })}
            </span>
          )}
        </>
      ),
    },
    { label: t('rewards.time'), cell: (r) => fmt.dateTime(new Date(r.created_at)) },
    ...(cancel
      ? [
          {
            label: '',
            cell: (r: RedemptionRow) =>
              r.status === 'issued' && (
                <a href={cancelHref(c, r)} aria-label={t('rewards.cancelLabel', { code: r.code })}>
                  {t('rewards.cancel')}
                </a>
              ),
          },
        ]
      : []),
  ]
}

/** What the list page shows besides the list: the code looked up and an outcome. */
interface Shown {
  code?: string
  error?: string
  status?: 400
}

async function list(c: ConsoleContext, deps: ConsoleDeps, s: Shown = {}) {
  const { t, fmt, session } = c.var
  const appid = accountOf(c)
  const acts = session.operator.role !== 'viewer'
  const typed = (s.code ?? c.req.query('code') ?? '').trim()
  const before = beforeOf(c)
  const valid = typed === '' || CODE.test(typed)
  const [rows, found] = await Promise.all([
    listRedemptions(deps.db, appid, { limit: PAGE + 1, before }),
    typed && valid ? redemptionByCode(deps.db, appid, typed) : undefined,
  ])
  const refund =
    found?.status === 'cancelled' ? await redemptionRefund(deps.db, appid, found.id) : undefined
  const more = rows.length > PAGE
  const page = rows.slice(0, PAGE)
  const done = c.req.query('done')
  const doneKey = ['cancelled', 'already_cancelled', 'cancelling'].includes(done ?? '')
    ? (`rewards.done.${done}` as MessageKey)
    : undefined
  const error =
    s.error ??
    (!valid
      ? t('rewards.error.lookup')
      : typed && !found
        ? t('rewards.notFound', { code: typed.toUpperCase() })
        : undefined)
  const cols = columns(c, t, fmt, acts)
  return renderPage(
    c,
    { title: t('rewards.title'), section: 'rewards' },
    <>
      <RewardsTabs t={t} current="/console/rewards/redemptions" />
      <Notice kind="ok" text={doneKey && found ? t(doneKey, { code: found.code }) : undefined} />
      <Notice kind="error" text={error} />
      <section class="card" aria-labelledby="lookup">
        <h2 id="lookup">{t('rewards.lookup')}</h2>
        <form method="get" action={`/console${PATH}`} class="filters">
          {c.req.query('appid') && (
            <input type="hidden" name="appid" value={c.req.query('appid')} />
          )}
          <Field id="lookup-code" label={t('rewards.lookupCode')} hint={t('rewards.lookupHint')}>
            <input
              id="lookup-code"
              name="code"
              value={typed}
              maxlength={40}
              autocomplete="off"
              autocapitalize="characters"
              aria-describedby="lookup-code-hint"
              aria-invalid={valid ? undefined : 'true'}
            />
          </Field>
          <button type="submit">{t('rewards.lookupSubmit')}</button>
        </form>
        {found && (
          <div id="found">
            <h3>{t('rewards.found', { code: found.code })}</h3>
            <DataTable
              rows={[found]}
              empty={t('common.empty')}
              columns={[
                ...cols,
                ...(found.cancelled_at
                  ? [
                      {
                        label: t('rewards.cancelledAt'),
                        cell: (r: RedemptionRow) =>
                          r.cancelled_at ? fmt.dateTime(new Date(r.cancelled_at)) : '',
                      },
                    ]
                  : []),
                ...(refund
                  ? [
                      {
                        label: t('rewards.refund'),
                        cell: () =>
                          t('rewards.refundText', {
                            delta: fmt.count(refund.delta),
                            balance: fmt.count(refund.balanceAfter),
                          }),
                      },
                    ]
                  : []),
              ]}
            />
          </div>
        )}
      </section>
      <section class="card" aria-labelledby="redemptions">
        <h2 id="redemptions">{t('rewards.redemptions')}</h2>
        <DataTable rows={page} empty={t('common.empty')} columns={cols} />
        <Pager
          c={c}
          path={`/console${PATH}`}
          anchor="redemptions"
          older={more ? page.at(-1)?.id : undefined}
        />
      </section>
    </>,
    s.status,
  )
}

async function redemptionOf(c: ConsoleContext, deps: ConsoleDeps) {
  const id = c.req.param('id') ?? ''
  const r = /^\d{1,15}$/.test(id)
    ? await redemptionById(deps.db, accountOf(c), Number(id))
    : undefined
  if (!r) throw new ConsoleRefusal(404, 'rewards.error.redemption')
  return r
}

async function confirm(c: ConsoleContext, deps: ConsoleDeps) {
  const { t, fmt, session } = c.var
  const r = await redemptionOf(c, deps)
  const back = keepAccount(c, `/console${PATH}`, { code: r.code })
  return renderPage(
    c,
    { title: t('rewards.confirmTitle'), section: 'rewards' },
    <>
      <RewardsTabs t={t} current="/console/rewards/redemptions" />
      <section class="card" aria-labelledby="confirm">
        <h2 id="confirm">{t('rewards.cancelLabel', { code: r.code })}</h2>
        <DataTable rows={[r]} empty={t('common.empty')} columns={columns(c, t, fmt, false)} />
        {r.status === 'issued' ? (
          <form method="post" action={cancelHref(c, r)} class="stack">
            <CsrfField token={session.csrfToken} />
            <p>{t('rewards.confirmText', { cost: fmt.count(r.cost), code: r.code })}</p>
            {r.rewardKind === 'cashback' && <p class="muted">{t('rewards.confirmCashback')}</p>}
            <div class="actions">
              <button type="submit">{t('rewards.confirmSubmit')}</button>
              <a href={back}>{t('rewards.back')}</a>
            </div>
          </form>
        ) : (
          <p>
            <a href={back}>{t('rewards.back')}</a>
          </p>
        )}
      </section>
    </>,
  )
}

export const redemptionsPage: ConsolePage = {
  section: 'rewards',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => list(c, deps))
    app.get(`${PATH}/:id/cancel`, requireRole('owner', 'operator'), (c) => confirm(c, deps))

    app.post(`${PATH}/:id/cancel`, requireRole('owner', 'operator'), async (c) => {
      const { t } = c.var
      const r = await redemptionOf(c, deps)
      const result = await cancelRedemption({ ...deps, t: translator(deps.locale) }, actorOf(c), {
        appid: accountOf(c),
        id: r.id,
      })
      switch (result.status) {
        case 'not_found':
          throw new ConsoleRefusal(404, 'rewards.error.redemption')
        case 'paid_out':
        case 'no_shop':
          return list(c, deps, {
            code: r.code,
            error: t(`rewards.error.${result.status}`),
            status: 400,
          })
        case 'pay_refused':
          return list(c, deps, {
            code: r.code,
            error: t('rewards.error.pay_refused', { code: result.code }),
            status: 400,
          })
        default:
          return c.redirect(
            keepAccount(c, `/console${PATH}`, { code: r.code, done: result.status }),
            303,
          )
      }
    })
  },
}
