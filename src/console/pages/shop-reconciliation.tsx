/**
 * 商城订单 → 对账: a bill day's report (`reconciliationReport`, the API's read) — each bill's run,
 * its lines and the bill's totals against ours, its mismatches — the open mismatches of every day
 * (`listMismatches`) each with a resolve form (`resolveMismatch`, validated by
 * `resolveMismatchInput`), and a form that reconciles a day now (`runReconciliation`).
 */
import * as v from 'valibot'
import {
  resolveMismatch,
  resolveMismatchInput,
  runReconciliation,
  runReconciliationInput,
} from '../../admin/actions/reconciliation-actions.js'
import { isDay, rowIdParam } from '../../routes/validate.js'
import { latestBillDate } from '../../shop/reconcile.js'
import { listMismatches, reconciliationReport } from '../../shop/reconciliation-report.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import {
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  requireRole,
} from '../context.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { ShopTabs, shopOf } from './shop-kit.js'
import { MismatchTable, RunTable } from './shop-reconciliation-tables.js'

const PATH = '/shop/reconciliation'
/** How many mismatches each list shows (each open one carries a form: the page stays < 100 KB). */
const SHOWN = 50

interface Shown {
  date?: string
  error?: string
  note?: { id: number; text: string }
}

async function show(c: ConsoleContext, deps: ConsoleDeps, s: Shown = {}) {
  const { t, session } = c.var
  const shop = shopOf(deps)
  const mchid = shop.gateway.mchid
  const asked = s.date ?? c.req.query('date')
  const badDate = asked !== undefined && asked !== '' && !isDay(asked)
  const date = asked && !badDate ? asked : latestBillDate(deps.clock.now())
  const [report, open] = await Promise.all([
    reconciliationReport(deps.db, { mchid, date }),
    listMismatches(deps.db, { mchid, status: 'open', limit: SHOWN + 1 }),
  ])
  const acts = session.operator.role !== 'viewer'
  const q = c.req.query()
  const notice = q.ran
    ? t('shop.rec.ran', { date })
    : q.resolved
      ? t('shop.rec.resolved', { id: q.resolved })
      : undefined
  const error = s.error ?? (badDate ? t('shop.error.date') : undefined)
  return renderPage(
    c,
    { title: t('shop.reconciliation'), section: 'shop' },
    <>
      <ShopTabs t={t} current="/console/shop/reconciliation" appid={shop.settings.appid} />
      <Notice kind="ok" text={notice} />
      <Notice kind="error" text={error} />
      <section class="card" aria-labelledby="rec-day">
        <h2 id="rec-day">{t('shop.rec.day', { date })}</h2>
        <form method="get" action={`/console${PATH}`} class="filters">
          <Field id="rec-date" label={t('shop.rec.date')}>
            <input id="rec-date" name="date" type="date" value={date} required />
          </Field>
          <button type="submit" class="secondary">
            {t('shop.rec.show')}
          </button>
        </form>
        <RunTable t={t} fmt={c.var.fmt} runs={report.runs} />
        {acts && (
          <form method="post" action={`/console${PATH}`} class="actions spaced">
            <CsrfField token={session.csrfToken} />
            <input type="hidden" name="date" value={date} />
            <button type="submit">{t('shop.rec.run', { date })}</button>
            <span class="muted">{t('shop.rec.runHint')}</span>
          </form>
        )}
        <h3>{t('shop.rec.dayMismatches')}</h3>
        <MismatchTable t={t} fmt={c.var.fmt} rows={report.mismatches.slice(0, SHOWN)} />
        {report.mismatches.length > SHOWN && (
          <p class="muted">{t('shop.rec.more', { n: SHOWN, total: report.mismatches.length })}</p>
        )}
      </section>
      <section class="card" aria-labelledby="rec-open">
        <h2 id="rec-open">
          {t('shop.rec.open', { n: open.length > SHOWN ? `${SHOWN}+` : open.length })}
        </h2>
        <MismatchTable
          t={t}
          fmt={c.var.fmt}
          rows={open.slice(0, SHOWN)}
          resolve={
            acts
              ? { csrf: session.csrfToken, action: `/console${PATH}/mismatches`, date }
              : undefined
          }
          note={s.note}
        />
      </section>
    </>,
    error ? 400 : 200,
  )
}

export const shopReconciliationPage: ConsolePage = {
  section: 'shop',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => show(c, deps))

    app.post(PATH, requireRole('owner', 'operator'), async (c) => {
      const { t } = c.var
      const shop = shopOf(deps)
      const body = await c.req.parseBody()
      const date = typeof body.date === 'string' ? body.date.trim() : ''
      const parsed = v.safeParse(runReconciliationInput, { date })
      if (!parsed.success) return show(c, deps, { error: t('shop.error.date') })
      const run = await runReconciliation({ ...deps, shop }, actorOf(c), parsed.output)
      if (run.status === 'not_ready')
        return show(c, deps, { date, error: t('shop.error.notReady', { latest: run.latest }) })
      const failed = run.outcomes.filter((o) => o.status === 'failed')
      if (failed.length > 0)
        return show(c, deps, {
          date,
          error: t('shop.error.runFailed', {
            errors: failed.map((o) => `${o.kind}: ${'error' in o ? o.error : ''}`).join('；'),
          }),
        })
      return c.redirect(`/console${PATH}?date=${date}&ran=1`, 303)
    })

    app.post(`${PATH}/mismatches/:id`, requireRole('owner', 'operator'), async (c) => {
      const { t } = c.var
      const shop = shopOf(deps)
      const id = v.safeParse(rowIdParam, c.req.param('id'))
      if (!id.success) throw new ConsoleRefusal(404, 'shop.error.noMismatch')
      const body = await c.req.parseBody()
      const text = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '')
      const date = isDay(text('date')) ? text('date') : undefined
      const parsed = v.safeParse(resolveMismatchInput, { status: 'resolved', note: text('note') })
      if (!parsed.success)
        return show(c, deps, {
          date,
          error: t('shop.error.note'),
          note: { id: id.output, text: text('note') },
        })
      const updated = await resolveMismatch({ ...deps, shop }, actorOf(c), {
        ...parsed.output,
        id: id.output,
      })
      if (!updated) throw new ConsoleRefusal(404, 'shop.error.noMismatch')
      return c.redirect(`/console${PATH}?${date ? `date=${date}&` : ''}resolved=${id.output}`, 303)
    })
  },
}
