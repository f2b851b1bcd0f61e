/**
 * 积分商城 → 奖品: the catalog with its stock (`allRewards`, the API's read), a reward added by
 * `createReward` and changed by `updateReward`, each form checked by the API's schema
 * (`createRewardInput`, `updateRewardInput`) with its problems shown beside the fields.
 */
import * as v from 'valibot'
import {
  createReward,
  createRewardInput,
  type Reward,
  updateReward,
  updateRewardInput,
} from '../../admin/actions/reward-actions.js'
import { allRewards } from '../../admin/reads/point-rules.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import { keepAccount } from '../components/pager.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  isLimited,
  refuseLimited,
  requireRole,
} from '../context.js'
import type { Format } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { RewardsTabs, readFields, shown, wholeNumber } from './reward-tabs.js'

const PATH = '/rewards/catalog'
/** The most rewards the page lists (a catalog is small; members pick by code). */
const SHOWN = 200

/** The reward form as typed. */
interface RewardForm {
  code: string
  name: string
  cost: string
  stock: string
  /**
   * The stock the edit form showed: stock is sent only when the operator changed it, so a save of
   * another field never writes back a stock that redemptions have lowered since.
   */
  stockShown: string
  /** The cost the edit form showed: left as it was, it changes nothing an owner saved since. */
  costShown: string
  perMemberLimit: string
  cashback: string
  enabled: boolean
}
type FieldName = Exclude<keyof RewardForm, 'enabled' | 'stockShown' | 'costShown'>
type RewardErrors = Partial<Record<FieldName, MessageKey>>

const BLANK: RewardForm = {
  code: '',
  name: '',
  cost: '',
  stock: '',
  stockShown: '',
  costShown: '',
  perMemberLimit: '',
  cashback: '',
  enabled: true,
}

const formOf = (r: Reward): RewardForm => ({
  code: String(r.code),
  name: r.name,
  cost: String(r.cost),
  stock: shown(r.stock),
  stockShown: shown(r.stock),
  costShown: String(r.cost),
  perMemberLimit: shown(r.per_member_limit),
  cashback: r.cashback_fen === null ? '' : (r.cashback_fen / 100).toFixed(2),
  enabled: r.enabled,
})

const readForm = (body: Record<string, unknown>): RewardForm =>
  readFields(body, [
    'code',
    'name',
    'cost',
    'stock',
    'stockShown',
    'costShown',
    'perMemberLimit',
    'cashback',
  ] as const)

/** Yuan as typed (`50`, `0.5`, `12.30`) in fen; NaN for anything else. */
const fenOf = (s: string) =>
  /^\d{1,7}(\.\d{1,2})?$/.test(s) ? Math.round(Number(s) * 100) : Number.NaN
const nullable = (s: string) => (s === '' ? null : wholeNumber(s))
const required = (s: string) => wholeNumber(s) ?? Number.NaN

/** The schema's issues by the form field each names (the first issue of a field wins). */
function errorsOf(issues: readonly v.BaseIssue<unknown>[]): RewardErrors {
  const errors: RewardErrors = {}
  for (const issue of issues) {
    const key = issue.path?.[0]?.key
    const field = (key === 'cashbackFen' ? 'cashback' : key) as FieldName | undefined
    if (field && !errors[field]) errors[field] = `rewards.error.${key}` as MessageKey
  }
  return errors
}

function RewardFields(p: {
  t: Translate
  prefix: string
  values: RewardForm
  errors: RewardErrors
  edit?: boolean
  /** The cost is shown, not offered: an operator with a grant limit may not set it. */
  costFixed?: boolean
}) {
  const { t, values: f, errors } = p
  const text = (field: FieldName, label: MessageKey, max: number, hint?: MessageKey) => {
    const id = `${p.prefix}-${field}`
    const described = [hint && `${id}-hint`, errors[field] && `${id}-error`].filter(Boolean)
    return (
      <Field id={id} label={t(label)} hint={hint && t(hint)}>
        <input
          id={id}
          name={field}
          value={f[field]}
          readonly={field === 'cost' && p.costFixed ? true : undefined}
          maxlength={max}
          required={field === 'code' || field === 'name' || field === 'cost'}
          inputmode={field === 'name' ? undefined : field === 'cashback' ? 'decimal' : 'numeric'}
          autocomplete="off"
          aria-invalid={errors[field] ? 'true' : undefined}
          aria-describedby={described.join(' ') || undefined}
        />
        {errors[field] && (
          <span class="notice error" id={`${id}-error`}>
            {t(errors[field]!)}
          </span>
        )}
      </Field>
    )
  }
  return (
    <>
      {!p.edit && text('code', 'rewards.code', 9, 'rewards.codeHint')}
      {text('name', 'rewards.name', 60)}
      {text('cost', 'rewards.cost', 9, p.costFixed ? 'error.limited' : undefined)}
      {text('stock', 'rewards.stock', 9, 'rewards.stockHint')}
      {p.edit && <input type="hidden" name="stockShown" value={f.stockShown} />}
      {p.edit && <input type="hidden" name="costShown" value={f.costShown} />}
      {text('perMemberLimit', 'rewards.perMemberLimit', 9, 'rewards.perMemberLimitHint')}
      {!p.edit && text('cashback', 'rewards.cashback', 10, 'rewards.cashbackHint')}
      {p.edit && (
        <label>
          <input type="checkbox" name="enabled" value="1" checked={f.enabled} />{' '}
          {t('rewards.enabled')}
        </label>
      )}
    </>
  )
}

const kindOf = (t: Translate, fmt: Format, r: Reward) =>
  r.kind === 'cashback' && r.cashback_fen !== null
    ? t('rewards.kind.cashback', { amount: fmt.fen(r.cashback_fen) })
    : t('rewards.kind.code')

interface Shown {
  create?: { values: RewardForm; errors: RewardErrors }
  edit?: { code: number; values: RewardForm; errors: RewardErrors }
  status?: 400
}

async function show(c: ConsoleContext, deps: ConsoleDeps, s: Shown = {}) {
  const { t, fmt, session } = c.var
  const appid = accountOf(c)
  const rewards = await allRewards(deps.db, appid, deps.clock.now())
  const acts = session.operator.role !== 'viewer'
  // an operator with a grant limit edits a reward but not its cost, and adds none (a cost, a cashback)
  const limited = isLimited(c)
  const editCode = s.edit?.code ?? Number(c.req.query('edit'))
  const editing = acts ? rewards.find((r) => r.code === editCode) : undefined
  const q = c.req.query()
  const notice = q.created
    ? t('rewards.rewardCreated', { code: q.created })
    : q.saved
      ? q.same
        ? t('rewards.rewardUnchanged')
        : t('rewards.rewardSaved', { code: q.saved })
      : undefined
  const opt = (n: number | null) => (n === null ? t('rewards.unlimited') : fmt.count(n))
  return renderPage(
    c,
    { title: t('rewards.title'), section: 'rewards' },
    <>
      <RewardsTabs t={t} current="/console/rewards/catalog" />
      <Notice kind="ok" text={notice} />
      <Notice kind="error" text={s.status ? t('rewards.error.form') : undefined} />
      <section class="card" aria-labelledby="catalog">
        <h2 id="catalog">{t('rewards.catalog')}</h2>
        {rewards.length > SHOWN && <p class="muted">{t('rewards.catalogMore', { n: SHOWN })}</p>}
        <DataTable
          rows={rewards.slice(0, SHOWN)}
          empty={t('common.empty')}
          columns={[
            { label: t('rewards.code'), num: true, cell: (r) => r.code },
            { label: t('rewards.name'), cell: (r) => r.name },
            { label: t('rewards.kind'), cell: (r) => kindOf(t, fmt, r) },
            { label: t('rewards.cost'), num: true, cell: (r) => fmt.count(r.cost) },
            { label: t('rewards.stock'), num: true, cell: (r) => opt(r.stock) },
            { label: t('rewards.perMemberLimit'), num: true, cell: (r) => opt(r.per_member_limit) },
            { label: t('rewards.state'), cell: (r) => t(r.enabled ? 'rewards.on' : 'rewards.off') },
            ...(acts
              ? [
                  {
                    label: '',
                    cell: (r: Reward) => (
                      <a
                        href={`${keepAccount(c, `/console${PATH}`, { edit: String(r.code) })}#reward-edit`}
                        aria-label={t('rewards.editRewardLabel', { code: r.code })}
                      >
                        {t('rewards.edit')}
                      </a>
                    ),
                  },
                ]
              : []),
          ]}
        />
      </section>
      {editing && (
        <section class="card" aria-labelledby="reward-edit">
          <h2 id="reward-edit">
            {t('rewards.editReward', { code: editing.code, name: editing.name })}
          </h2>
          <form
            method="post"
            action={keepAccount(c, `/console${PATH}/${editing.code}`)}
            class="stack"
            novalidate
          >
            <CsrfField token={session.csrfToken} />
            <RewardFields
              t={t}
              prefix="edit"
              edit
              costFixed={limited}
              values={s.edit?.values ?? formOf(editing)}
              errors={s.edit?.errors ?? {}}
            />
            <button type="submit">{t('common.save')}</button>
          </form>
        </section>
      )}
      {acts && limited && (
        <section class="card" aria-labelledby="reward-new">
          <h2 id="reward-new">{t('rewards.newReward')}</h2>
          <p class="muted">{t('error.limited')}</p>
        </section>
      )}
      {acts && !limited && (
        <section class="card" aria-labelledby="reward-new">
          <h2 id="reward-new">{t('rewards.newReward')}</h2>
          <form method="post" action={keepAccount(c, `/console${PATH}`)} class="stack" novalidate>
            <CsrfField token={session.csrfToken} />
            <RewardFields
              t={t}
              prefix="new"
              values={s.create?.values ?? BLANK}
              errors={s.create?.errors ?? {}}
            />
            <button type="submit">{t('rewards.newReward')}</button>
          </form>
        </section>
      )}
    </>,
    s.status,
  )
}

export const rewardCatalogPage: ConsolePage = {
  section: 'rewards',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => show(c, deps))

    app.post(PATH, requireRole('owner', 'operator'), async (c) => {
      // A new reward sets what points are worth (its cost, a cashback): not an operator with a limit.
      refuseLimited(c)
      const appid = accountOf(c)
      const values = readForm(await c.req.parseBody())
      const parsed = v.safeParse(createRewardInput, {
        code: required(values.code),
        name: values.name,
        cost: required(values.cost),
        stock: nullable(values.stock),
        perMemberLimit: nullable(values.perMemberLimit),
        ...(values.cashback === '' ? {} : { cashbackFen: fenOf(values.cashback) }),
      })
      if (!parsed.success)
        return show(c, deps, { create: { values, errors: errorsOf(parsed.issues) }, status: 400 })
      const row = await createReward(deps, actorOf(c), { ...parsed.output, appid })
      if (!row)
        return show(c, deps, {
          create: { values, errors: { code: 'rewards.error.codeTaken' } },
          status: 400,
        })
      return c.redirect(keepAccount(c, `/console${PATH}`, { created: String(row.code) }), 303)
    })

    app.post(`${PATH}/:code`, requireRole('owner', 'operator'), async (c) => {
      const appid = accountOf(c)
      const code = Number(c.req.param('code'))
      const rewards = await allRewards(deps.db, appid, deps.clock.now())
      const reward = /^\d{1,9}$/.test(c.req.param('code'))
        ? rewards.find((r) => r.code === code)
        : undefined
      if (!reward) throw new ConsoleRefusal(404, 'rewards.error.reward')
      const values = readForm(await c.req.parseBody())
      const now = formOf(reward)
      const body: Record<string, unknown> = {}
      if (values.name !== now.name) body.name = values.name
      // A cost left as the form showed it is no change (an owner may have set another since).
      const costTyped =
        values.costShown === '' ? values.cost !== now.cost : values.cost !== values.costShown
      if (costTyped && values.cost !== now.cost) {
        refuseLimited(c)
        body.cost = required(values.cost)
      }
      // Only a stock the operator changed: redemptions may have lowered it since the form was shown.
      if (values.stock !== values.stockShown) body.stock = nullable(values.stock)
      if (values.perMemberLimit !== now.perMemberLimit)
        body.perMemberLimit = nullable(values.perMemberLimit)
      if (values.enabled !== now.enabled) body.enabled = values.enabled
      const parsed = v.safeParse(updateRewardInput, body)
      if (!parsed.success)
        return show(c, deps, {
          edit: { code, values, errors: errorsOf(parsed.issues) },
          status: 400,
        })
      const same = Object.keys(body).length === 0
      if (!same) await updateReward(deps, actorOf(c), { ...parsed.output, appid, code })
      return c.redirect(
        keepAccount(c, `/console${PATH}`, { saved: String(code), ...(same ? { same: '1' } : {}) }),
        303,
      )
    })
  },
}
