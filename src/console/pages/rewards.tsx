/**
 * 积分商城 → 规则与等级: the points rules in effect (`effectiveRules`, the API's read) with their
 * caps, edited through `putRule` (validated by `putRuleInput` and `putRuleProblem`, as the API
 * does); the level thresholds and multipliers the engine applies (src/community/levels.ts) and
 * how many followers are at each level (the rollup's `members.level`).
 */
import * as v from 'valibot'
import { putRule, putRuleInput, putRuleProblem } from '../../admin/actions/rule-actions.js'
import { effectiveRules } from '../../admin/reads/point-rules.js'
import { levelDistribution } from '../../admin/reads/reward-reads.js'
import { LEVELS } from '../../community/levels.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import { keepAccount } from '../components/pager.js'
import { Select } from '../components/select.js'
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
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { RewardsTabs, readFields, shown, wholeNumber } from './reward-tabs.js'

const PATH = '/rewards'
type Rule = Awaited<ReturnType<typeof effectiveRules>>[number]

/** The rules the messages name; any other rule shows by its key. */
const NAMED_RULES = new Set([
  'daily_login',
  'checkin',
  'first_purchase',
  'product_review',
  'friend_invite',
  'content_share',
  'complete_profile',
  'purchase',
])
const ruleName = (t: Translate, rule: string) =>
  NAMED_RULES.has(rule) ? t(`rewards.rule.${rule}` as MessageKey) : rule

/** The rule form as typed. */
interface RuleForm {
  points: string
  capCount: string
  capPeriod: string
  enabled: boolean
}
type RuleErrors = Partial<Record<'points' | 'capCount', MessageKey>>

const formOf = (r: Rule): RuleForm => ({
  points: String(r.points),
  capCount: shown(r.capCount),
  capPeriod: r.capPeriod ?? '',
  enabled: r.enabled,
})

const readRuleForm = (body: Record<string, unknown>): RuleForm =>
  readFields(body, ['points', 'capCount', 'capPeriod'] as const)

/** The form checked as the API checks a body: the input, or the problems by field. */
function checkRule(f: RuleForm) {
  const parsed = v.safeParse(putRuleInput, {
    points: wholeNumber(f.points) ?? Number.NaN,
    capCount: f.capCount === '' ? null : wholeNumber(f.capCount),
    capPeriod: f.capPeriod === '' ? null : f.capPeriod,
    enabled: f.enabled,
  })
  const errors: RuleErrors = {}
  if (!parsed.success) {
    for (const issue of parsed.issues) {
      const field = issue.path?.[0]?.key
      if (field === 'points') errors.points ??= 'rewards.error.points'
      else if (field === 'capCount') errors.capCount ??= 'rewards.error.capCount'
      else errors.capCount ??= 'rewards.error.capBoth'
    }
    return { errors }
  }
  if (putRuleProblem(parsed.output))
    return { errors: { capCount: 'rewards.error.capBoth' } as RuleErrors }
  return { input: parsed.output }
}

function RuleEditForm(p: {
  t: Translate
  rule: Rule
  action: string
  csrf: string
  values: RuleForm
  errors: RuleErrors
}) {
  const { t, values: f, errors } = p
  const problem = (id: string, key?: MessageKey) =>
    key && (
      <span class="notice error" id={`${id}-error`}>
        {t(key)}
      </span>
    )
  return (
    <form method="post" action={p.action} class="stack" novalidate>
      <CsrfField token={p.csrf} />
      <Field id="rule-points" label={t('rewards.points')}>
        <input
          id="rule-points"
          name="points"
          value={f.points}
          inputmode="numeric"
          maxlength={7}
          required
          aria-invalid={errors.points ? 'true' : undefined}
          aria-describedby={errors.points ? 'rule-points-error' : undefined}
        />
        {problem('rule-points', errors.points)}
      </Field>
      <Field id="rule-cap-count" label={t('rewards.capCount')} hint={t('rewards.capCountHint')}>
        <input
          id="rule-cap-count"
          name="capCount"
          value={f.capCount}
          inputmode="numeric"
          maxlength={9}
          aria-invalid={errors.capCount ? 'true' : undefined}
          aria-describedby={
            errors.capCount ? 'rule-cap-count-hint rule-cap-count-error' : 'rule-cap-count-hint'
          }
        />
        {problem('rule-cap-count', errors.capCount)}
      </Field>
      <Field id="rule-cap-period" label={t('rewards.capPeriod')}>
        <Select
          id="rule-cap-period"
          name="capPeriod"
          value={f.capPeriod}
          options={[
            ['', t('rewards.capPeriod.none')],
            ['day', t('rewards.period.day')],
            ['week', t('rewards.period.week')],
            ['ever', t('rewards.period.ever')],
          ]}
        />
      </Field>
      <label>
        <input type="checkbox" name="enabled" value="1" checked={f.enabled} />{' '}
        {t('rewards.enabled')}
      </label>
      <button type="submit">{t('common.save')}</button>
    </form>
  )
}

interface Shown {
  edit?: { rule: string; values: RuleForm; errors: RuleErrors }
  status?: 400
}

async function show(c: ConsoleContext, deps: ConsoleDeps, s: Shown = {}) {
  const { t, fmt, session } = c.var
  const appid = accountOf(c)
  const [rules, levels] = await Promise.all([
    effectiveRules(deps.db, appid),
    levelDistribution(deps.db, appid),
  ])
  // an operator with a grant limit sees the rules read-only: what a rule gives is not theirs to set
  const limited = isLimited(c)
  const acts = session.operator.role !== 'viewer' && !limited
  const editing = acts
    ? rules.find((r) => r.rule === (s.edit?.rule ?? c.req.query('rule')))
    : undefined
  const saved = c.req.query('saved')
  const cap = (r: Rule) =>
    r.capCount === null || r.capPeriod === null
      ? t('rewards.unlimited')
      : t(`rewards.cap.${r.capPeriod}`, { count: fmt.count(r.capCount) })
  return renderPage(
    c,
    { title: t('rewards.title'), section: 'rewards' },
    <>
      <RewardsTabs t={t} current="/console/rewards" />
      <Notice kind="ok" text={saved ? t('rewards.ruleSaved', { rule: saved }) : undefined} />
      <section class="card" aria-labelledby="rules">
        <h2 id="rules">{t('rewards.rules')}</h2>
        <p class="muted">{t('rewards.rulesHint')}</p>
        {limited && <p class="muted">{t('error.limited')}</p>}
        <DataTable
          rows={rules}
          empty={t('common.empty')}
          columns={[
            {
              label: t('rewards.rule'),
              cell: (r) => (
                <>
                  {ruleName(t, r.rule)} <code class="muted">{r.rule}</code>
                </>
              ),
            },
            { label: t('rewards.points'), num: true, cell: (r) => fmt.count(r.points) },
            { label: t('rewards.cap'), cell: cap },
            { label: t('rewards.state'), cell: (r) => t(r.enabled ? 'rewards.on' : 'rewards.off') },
            {
              label: t('rewards.source'),
              cell: (r) => t(r.overridden ? 'rewards.source.own' : 'rewards.source.default'),
            },
            ...(acts
              ? [
                  {
                    label: '',
                    cell: (r: Rule) => (
                      <a
                        href={`${keepAccount(c, `/console${PATH}`, { rule: r.rule })}#rule-form`}
                        aria-label={t('rewards.editRuleLabel', { rule: ruleName(t, r.rule) })}
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
        <section class="card" aria-labelledby="rule-form">
          <h2 id="rule-form">{t('rewards.editRule', { rule: ruleName(t, editing.rule) })}</h2>
          <Notice kind="error" text={s.status ? t('rewards.error.form') : undefined} />
          <RuleEditForm
            t={t}
            rule={editing}
            action={keepAccount(c, `/console${PATH}/rules/${editing.rule}`)}
            csrf={session.csrfToken}
            values={s.edit?.values ?? formOf(editing)}
            errors={s.edit?.errors ?? {}}
          />
        </section>
      )}
      <section class="card" aria-labelledby="levels">
        <h2 id="levels">{t('rewards.levels')}</h2>
        <p class="muted">{t('rewards.levelsHint')}</p>
        <p class="muted">
          {levels.day ? t('rewards.levelsDay', { day: levels.day }) : t('rewards.levelsLive')}
        </p>
        <DataTable
          rows={LEVELS.map((l) => ({
            ...l,
            members: levels.counts.find((x) => x.key === l.key)?.members ?? 0,
          }))}
          empty={t('common.empty')}
          columns={[
            { label: t('rewards.level'), cell: (l) => t(`rewards.level.${l.key}`) },
            { label: t('rewards.levelMin'), num: true, cell: (l) => fmt.count(l.min) },
            { label: t('rewards.multiplier'), num: true, cell: (l) => `×${l.multiplier}` },
            { label: t('rewards.levelMembers'), num: true, cell: (l) => fmt.count(l.members) },
          ]}
        />
      </section>
    </>,
    s.status,
  )
}

export const rewardsPage: ConsolePage = {
  section: 'rewards',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => show(c, deps))

    app.post(`${PATH}/rules/:rule`, requireRole('owner', 'operator'), async (c) => {
      refuseLimited(c)
      const appid = accountOf(c)
      const rule = c.req.param('rule')
      const rules = await effectiveRules(deps.db, appid)
      if (!rules.some((r) => r.rule === rule)) throw new ConsoleRefusal(404, 'rewards.error.rule')
      const values = readRuleForm(await c.req.parseBody())
      const checked = checkRule(values)
      if (!checked.input)
        return show(c, deps, { edit: { rule, values, errors: checked.errors }, status: 400 })
      await putRule(deps, actorOf(c), { ...checked.input, appid, rule })
      return c.redirect(keepAccount(c, `/console${PATH}`, { saved: rule }), 303)
    })
  },
}
