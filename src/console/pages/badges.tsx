/**
 * 积分商城 → 徽章: the badge rules in effect (`effectiveBadgeRules`, the API's read) with their
 * conditions and how many members hold each; owners and operators switch one on or off
 * (`setBadgeEnabled`) and add or replace a single-counter rule (`putBadgeRule`, validated by
 * `putBadgeInput` as the API does — compound conditions are the API's). Also the member page's
 * badge card.
 */
import * as v from 'valibot'
import {
  isBadgeKey,
  putBadgeInput,
  putBadgeRule,
  setBadgeEnabled,
} from '../../admin/actions/badge-actions.js'
import {
  type BadgePredicate,
  type BadgeRule,
  COUNTERS,
  effectiveBadgeRules,
  type memberBadges,
} from '../../community/badges.js'
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
  requireRole,
} from '../context.js'
import type { Format } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { RewardsTabs, readFields, wholeNumber } from './reward-tabs.js'

const PATH = '/rewards/badges'
const FIELDS = ['key', 'name', 'description', 'counter', 'atLeast', 'position'] as const
type BadgeForm = Record<(typeof FIELDS)[number], string> & { enabled: boolean }
type BadgeErrors = Partial<Record<(typeof FIELDS)[number], MessageKey>>

/** A predicate in words. */
export function conditionText(t: Translate, p: BadgePredicate | null): string {
  if (!p) return t('badges.cond.invalid')
  if ('counter' in p)
    return t('badges.cond.atLeast', {
      counter: t(`badges.counter.${p.counter}` as MessageKey),
      n: p.atLeast,
    })
  const parts = ('all' in p ? p.all : p.any).map((q) => conditionText(t, q)).join('；')
  return t('all' in p ? 'badges.cond.all' : 'badges.cond.any', { parts })
}

const blank: BadgeForm = {
  key: '',
  name: '',
  description: '',
  counter: 'streak',
  atLeast: '',
  position: '100',
  enabled: true,
}

const formOf = (r: BadgeRule): BadgeForm | undefined =>
  r.predicate && 'counter' in r.predicate
    ? {
        key: r.key,
        name: r.name,
        description: r.description,
        counter: r.predicate.counter,
        atLeast: String(r.predicate.atLeast),
        position: String(r.position),
        enabled: r.enabled,
      }
    : undefined

/** The form checked as the API checks a body: the input, or the problems by field. */
function checkBadge(f: BadgeForm) {
  const errors: BadgeErrors = {}
  if (!isBadgeKey(f.key)) errors.key = 'badges.error.key'
  const parsed = v.safeParse(putBadgeInput, {
    name: f.name,
    description: f.description,
    predicate: { counter: f.counter, atLeast: wholeNumber(f.atLeast) ?? Number.NaN },
    enabled: f.enabled,
    position: wholeNumber(f.position) ?? 100,
  })
  if (!parsed.success) {
    for (const issue of parsed.issues) {
      const field = issue.path?.[0]?.key
      if (field === 'name') errors.name ??= 'badges.error.name'
      else if (field === 'description') errors.description ??= 'badges.error.description'
      else if (field === 'position') errors.position ??= 'badges.error.position'
      else errors.atLeast ??= 'badges.error.atLeast'
    }
  }
  return parsed.success && !errors.key ? { input: parsed.output } : { errors }
}

function BadgeEditForm(p: {
  t: Translate
  action: string
  csrf: string
  values: BadgeForm
  errors: BadgeErrors
}) {
  const { t, values: f, errors } = p
  const input = (
    name: (typeof FIELDS)[number],
    label: MessageKey,
    max: number,
    numeric = false,
  ) => (
    <Field id={`badge-${name}`} label={t(label)}>
      <input
        id={`badge-${name}`}
        name={name}
        value={f[name]}
        maxlength={max}
        inputmode={numeric ? 'numeric' : undefined}
        aria-invalid={errors[name] ? 'true' : undefined}
        aria-describedby={errors[name] ? `badge-${name}-error` : undefined}
      />
      {errors[name] && (
        <span class="notice error" id={`badge-${name}-error`}>
          {t(errors[name])}
        </span>
      )}
    </Field>
  )
  return (
    <form method="post" action={p.action} class="stack" novalidate>
      <CsrfField token={p.csrf} />
      {input('key', 'badges.key', 41)}
      {input('name', 'badges.name', 20)}
      {input('description', 'badges.description', 60)}
      <Field id="badge-counter" label={t('badges.counter')}>
        <Select
          id="badge-counter"
          name="counter"
          value={f.counter}
          options={COUNTERS.map((c) => [c, t(`badges.counter.${c}` as MessageKey)])}
        />
      </Field>
      {input('atLeast', 'badges.atLeast', 7, true)}
      {input('position', 'badges.position', 5, true)}
      <label>
        <input type="checkbox" name="enabled" value="1" checked={f.enabled} />{' '}
        {t('rewards.enabled')}
      </label>
      <button type="submit">{t('common.save')}</button>
    </form>
  )
}

interface Shown {
  values?: BadgeForm
  errors?: BadgeErrors
  status?: 400
}

async function show(c: ConsoleContext, deps: ConsoleDeps, s: Shown = {}) {
  const { t, fmt, session } = c.var
  const appid = accountOf(c)
  const rules = await effectiveBadgeRules(deps.db, appid)
  const acts = session.operator.role !== 'viewer'
  const asked = rules.find((r) => r.key === c.req.query('badge'))
  const values = s.values ?? (asked && formOf(asked)) ?? blank
  const saved = c.req.query('saved')
  const switched = c.req.query('switched')
  const on = c.req.query('on') === '1'
  return renderPage(
    c,
    { title: t('badges.title'), section: 'rewards' },
    <>
      <RewardsTabs t={t} current="/console/rewards/badges" />
      <Notice kind="ok" text={saved ? t('badges.saved', { key: saved }) : undefined} />
      <Notice
        kind="ok"
        text={
          switched
            ? t('badges.switched', { key: switched, state: t(on ? 'rewards.on' : 'rewards.off') })
            : undefined
        }
      />
      <section class="card" aria-labelledby="badge-rules">
        <h2 id="badge-rules">{t('badges.rules')}</h2>
        <p class="muted">{t('badges.hint')}</p>
        <DataTable
          rows={rules}
          empty={t('common.empty')}
          columns={[
            {
              label: t('badges.name'),
              cell: (r) => (
                <>
                  {r.name} <code class="muted">{r.key}</code>
                  {r.description && <div class="muted">{r.description}</div>}
                </>
              ),
            },
            { label: t('badges.condition'), cell: (r) => conditionText(t, r.predicate) },
            { label: t('badges.holders'), num: true, cell: (r) => fmt.count(r.holders) },
            { label: t('rewards.state'), cell: (r) => t(r.enabled ? 'rewards.on' : 'rewards.off') },
            {
              label: t('rewards.source'),
              cell: (r) => t(r.overridden ? 'rewards.source.own' : 'rewards.source.default'),
            },
            ...(acts
              ? [
                  {
                    label: '',
                    cell: (r: BadgeRule) => (
                      <div class="actions">
                        <form
                          method="post"
                          action={keepAccount(c, `/console${PATH}/${r.key}/enabled`)}
                          class="inline"
                        >
                          <CsrfField token={session.csrfToken} />
                          <input type="hidden" name="enabled" value={r.enabled ? '0' : '1'} />
                          <button
                            type="submit"
                            class="secondary"
                            aria-label={t('badges.switchLabel', {
                              action: t(r.enabled ? 'badges.disable' : 'badges.enable'),
                              name: r.name,
                            })}
                          >
                            {t(r.enabled ? 'badges.disable' : 'badges.enable')}
                          </button>
                        </form>
                        {formOf(r) ? (
                          <a
                            href={`${keepAccount(c, `/console${PATH}`, { badge: r.key })}#badge-form`}
                            aria-label={t('badges.editLabel', { name: r.name })}
                          >
                            {t('badges.edit')}
                          </a>
                        ) : (
                          <span class="muted">{t('badges.compound')}</span>
                        )}
                      </div>
                    ),
                  },
                ]
              : []),
          ]}
        />
      </section>
      {acts && (
        <section class="card" aria-labelledby="badge-form">
          <h2 id="badge-form">{t('badges.form')}</h2>
          <p class="muted">{t('badges.formHint')}</p>
          <Notice kind="error" text={s.status ? t('badges.error.form') : undefined} />
          <BadgeEditForm
            t={t}
            action={keepAccount(c, `/console${PATH}`)}
            csrf={session.csrfToken}
            values={values}
            errors={s.errors ?? {}}
          />
        </section>
      )}
    </>,
    s.status,
  )
}

export const badgesPage: ConsolePage = {
  section: 'rewards',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => show(c, deps))

    app.post(PATH, requireRole('owner', 'operator'), async (c) => {
      const appid = accountOf(c)
      const values = readFields(await c.req.parseBody(), FIELDS)
      const checked = checkBadge(values)
      if (!checked.input) return show(c, deps, { values, errors: checked.errors, status: 400 })
      await putBadgeRule(deps, actorOf(c), { ...checked.input, appid, key: values.key })
      return c.redirect(keepAccount(c, `/console${PATH}`, { saved: values.key }), 303)
    })

    app.post(`${PATH}/:key/enabled`, requireRole('owner', 'operator'), async (c) => {
      const appid = accountOf(c)
      const key = c.req.param('key')
      const enabled = (await c.req.parseBody()).enabled === '1'
      const known =
        isBadgeKey(key) && (await setBadgeEnabled(deps, actorOf(c), { appid, key, enabled }))
      if (!known) throw new ConsoleRefusal(404, 'badges.error.unknown')
      const query = { switched: key, on: enabled ? '1' : '0' }
      return c.redirect(keepAccount(c, `/console${PATH}`, query), 303)
    })
  },
}

/** The member page's card: the badges the member holds, when each was earned. */
export function MemberBadgesCard(p: {
  t: Translate
  fmt: Format
  badges: Awaited<ReturnType<typeof memberBadges>>
}) {
  const { t, fmt } = p
  return (
    <section class="card" aria-labelledby="badges">
      <h2 id="badges">{t('member.badges')}</h2>
      <DataTable
        rows={p.badges}
        empty={t('member.noBadges')}
        columns={[
          { label: t('badges.name'), cell: (b) => b.name },
          { label: t('badges.description'), cell: (b) => b.description },
          { label: t('member.badgeAt'), cell: (b) => fmt.dateTime(b.awardedAt) },
        ]}
      />
    </section>
  )
}
