/**
 * 系统 → 告警设置, edited: one fieldset per rule (on, threshold in the rule's unit — percent,
 * seconds, periods or a count —, window, fewest samples, repeat interval), posted to
 * `/system/alert-settings` by an owner or operator, validated by the engine's schema
 * (`alertSettingsPatch`, thresholds within each rule's bounds) and saved by `updateAlertSettings`,
 * the admin API's action. An empty field, or the default, drops the override. Bad input comes back
 * with each field's message (400), nothing saved.
 */
import type { Hono } from 'hono'
import * as v from 'valibot'
import { updateAlertSettings, updateAlertSettingsInput } from '../../admin/actions/alert-actions.js'
import {
  ALERT_RULE_KEYS,
  ALERT_RULES,
  type AlertRuleKey,
  type AlertSettings,
  type RuleSettings,
  readAlertSettings,
} from '../../analytics/alert-rules.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  type ConsoleEnv,
  requireRole,
} from '../context.js'
import type { MessageKey, Translate } from '../i18n.js'
import { renderPage } from '../render.js'
import { SystemTabs } from './system-tabs.js'

const PATH = '/system/alert-settings'
type NumberField = 'threshold' | 'windowMinutes' | 'minSamples' | 'repeatMinutes'
const NUMBER_FIELDS: NumberField[] = ['threshold', 'windowMinutes', 'minSamples', 'repeatMinutes']

/** What the form shows and posts: `<rule>.<field>` → text (`<rule>.enabled` → `on` when ticked). */
export type AlertFormValues = Record<string, string>
/** A field's message, by `<rule>.<field>`. */
export type AlertFormErrors = Record<string, string>

/** Percent in the form, a fraction in the engine (rounded so 7 % is 0.07, not 0.0700…01). */
const isRatio = (key: AlertRuleKey) => ALERT_RULES[key].unit === 'ratio'
const shown = (key: AlertRuleKey, field: NumberField, n: number) =>
  field === 'threshold' && isRatio(key) ? Number((n * 100).toFixed(4)) : n
const stored = (key: AlertRuleKey, field: NumberField, n: number) =>
  field === 'threshold' && isRatio(key) ? Number((n / 100).toFixed(8)) : n

/** The fields a rule has (not every rule has a window or a sample minimum). */
const fieldsOf = (key: AlertRuleKey) =>
  NUMBER_FIELDS.filter((f) => ALERT_RULES[key].defaults[f] !== undefined)

/** The form's values from effective settings. */
export function alertFormValues(settings: AlertSettings): AlertFormValues {
  const out: AlertFormValues = {}
  for (const key of ALERT_RULE_KEYS) {
    const r = settings.rules[key]
    if (r.enabled) out[`${key}.enabled`] = 'on'
    for (const f of fieldsOf(key)) out[`${key}.${f}`] = String(shown(key, f, r[f] as number))
  }
  return out
}

/** The posted form as the engine's patch: a field equal to its default (or empty) resets it. */
export function alertPatch(values: AlertFormValues): unknown {
  const rules: Record<string, Record<string, unknown>> = {}
  for (const key of ALERT_RULE_KEYS) {
    const d: RuleSettings = ALERT_RULES[key].defaults
    const enabled = values[`${key}.enabled`] === 'on'
    const change: Record<string, unknown> = { enabled: enabled === d.enabled ? null : enabled }
    for (const f of fieldsOf(key)) {
      const raw = (values[`${key}.${f}`] ?? '').trim()
      if (raw === '') change[f] = null
      else if (!/^-?\d+(\.\d+)?$/.test(raw))
        change[f] = raw // refused by the schema: a number
      else {
        const n = stored(key, f, Number(raw))
        change[f] = n === d[f] ? null : n
      }
    }
    rules[key] = change
  }
  return { rules }
}

/** The schema's issues as messages in the form's units, by `<rule>.<field>`. */
function formErrors(t: Translate, issues: v.BaseIssue<unknown>[]): AlertFormErrors {
  const out: AlertFormErrors = {}
  for (const issue of issues) {
    const [, rule, field] = (issue.path ?? []).map((p) => String(p.key))
    if (!rule || !field) continue
    const name = `${rule}.${field}`
    if (out[name]) continue
    const n = typeof issue.requirement === 'number' ? issue.requirement : undefined
    const bound = n === undefined ? 0 : shown(rule as AlertRuleKey, field as NumberField, n)
    out[name] =
      issue.type === 'min_value'
        ? t('system.alertError.min', { n: bound })
        : issue.type === 'max_value'
          ? t('system.alertError.max', { n: bound })
          : issue.type === 'integer' || issue.message.includes('whole')
            ? t('system.alertError.integer')
            : t('system.alertError.number')
  }
  return out
}

const LABELS: Record<Exclude<NumberField, 'threshold'>, MessageKey> = {
  windowMinutes: 'system.windowMinutes',
  minSamples: 'system.minSamples',
  repeatMinutes: 'system.repeatMinutes',
}

/** The form: one fieldset per rule. */
export function AlertSettingsForm(p: {
  t: Translate
  csrf: string
  action: string
  values: AlertFormValues
  errors?: AlertFormErrors
}) {
  const { t } = p
  return (
    <form method="post" action={p.action} class="stack wide" novalidate>
      <CsrfField token={p.csrf} />
      <p class="muted">{t('system.alertHint')}</p>
      {ALERT_RULE_KEYS.map((key) => {
        const spec = ALERT_RULES[key]
        return (
          <fieldset>
            <legend>{t(`system.rule.${key}`)}</legend>
            <label>
              <input
                type="checkbox"
                name={`${key}.enabled`}
                checked={p.values[`${key}.enabled`] === 'on'}
              />{' '}
              {t('system.enabled')}
            </label>
            {fieldsOf(key).map((f) => {
              const id = `alert-${key}-${f}`
              const error = p.errors?.[`${key}.${f}`]
              const label = f === 'threshold' ? t(`system.threshold.${spec.unit}`) : t(LABELS[f])
              return (
                <Field id={id} label={label} hint={error}>
                  <input
                    id={id}
                    name={`${key}.${f}`}
                    inputmode="decimal"
                    value={p.values[`${key}.${f}`] ?? ''}
                    placeholder={String(shown(key, f, spec.defaults[f] as number))}
                    aria-invalid={error ? 'true' : undefined}
                    aria-describedby={error ? `${id}-hint` : undefined}
                  />
                </Field>
              )
            })}
          </fieldset>
        )
      })}
      <button type="submit">{t('system.alertSave')}</button>
    </form>
  )
}

/** The form's page: the current settings, or a refused change with its messages (400). */
function formPage(c: ConsoleContext, values: AlertFormValues, errors?: AlertFormErrors) {
  const { t, session } = c.var
  return renderPage(
    c,
    { title: t('system.alertEdit'), section: 'system' },
    <>
      <SystemTabs t={t} current="/console/system" />
      <Notice kind="error" text={errors ? t('system.alertError') : undefined} />
      <section class="card" aria-labelledby="alert-edit">
        <h2 id="alert-edit">{t('system.alertEdit')}</h2>
        <AlertSettingsForm
          t={t}
          csrf={session.csrfToken}
          action={alertFormAction(c)}
          values={values}
          errors={errors}
        />
      </section>
    </>,
    errors ? 400 : 200,
  )
}

/** Where the form posts (keeping the page's account). */
export const alertFormAction = (c: ConsoleContext) => {
  const appid = c.req.query('appid')
  return `/console${PATH}${appid ? `?appid=${encodeURIComponent(appid)}` : ''}`
}

/** Registers the form's page and its POST (owners and operators). */
export function mountAlertSettings(app: Hono<ConsoleEnv>, deps: ConsoleDeps) {
  app.get(PATH, requireRole('owner', 'operator'), async (c) =>
    formPage(c, alertFormValues(await readAlertSettings(deps.db, accountOf(c)))),
  )
  app.post(PATH, requireRole('owner', 'operator'), async (c) => {
    const body = await c.req.parseBody()
    const values: AlertFormValues = {}
    for (const [k, x] of Object.entries(body)) if (typeof x === 'string') values[k] = x
    const parsed = v.safeParse(updateAlertSettingsInput, alertPatch(values))
    if (!parsed.success) return formPage(c, values, formErrors(c.var.t, parsed.issues))
    const appid = accountOf(c)
    const actor = actorOf(c)
    // The console does not change the robot chats: none is named, so none is refused.
    await updateAlertSettings(deps, actor, { appid, patch: parsed.output, robotChats: [] })
    const query = new URLSearchParams({ saved: '1' })
    if (c.req.query('appid')) query.set('appid', c.req.query('appid')!)
    return c.redirect(`/console/system?${query}#alert-settings`, 303)
  })
}
