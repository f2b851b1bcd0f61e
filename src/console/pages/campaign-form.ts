/**
 * The campaign form's fields (new and edit), read into the input `createCampaign` and
 * `updateCampaign` take: the same valibot schema and whole-input checks (`createCampaignProblem`:
 * the 2023 template rules, cron) the campaign API applies, with the first problem named by its
 * field; and an existing campaign as the form's values.
 */
import * as v from 'valibot'
import {
  type CreateCampaignInput,
  createCampaignInput,
  createCampaignProblem,
  variantsOf,
} from '../../admin/actions/campaign-input.js'
import type { CampaignView } from '../../admin/reads/campaign-views.js'
import {
  type Audience,
  type CampaignVariant,
  MAX_CONVERSION_DAYS,
} from '../../community/campaigns.js'
import { templateIssue } from '../../community/template-problem.js'
import { templateRuleText } from '../code-labels.js'
import { consoleFormat } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'

/** The variant keys the form offers (A always, B when the A/B test is on). */
export const FORM_VARIANTS = ['A', 'B'] as const
/** Template fields per variant on the form. */
export const FORM_FIELDS = [1, 2, 3] as const

/** The form's values, as posted (strings; absent fields empty). */
export type FormValues = Record<string, string>

/** The values a fresh form starts with. */
export const DEFAULT_VALUES: FormValues = {
  audienceKind: 'segment',
  segment: 'at_risk',
  groupChannel: 'wecom_aibot',
  scheduleKind: 'at',
  cron: '0 10 * * *',
  conversionDays: '7',
  a_weight: '50',
  b_weight: '50',
  a_key1: 'thing1',
  a_key2: 'thing2',
  b_key1: 'thing1',
  b_key2: 'thing2',
}

/** Why a campaign's values do not fit the form (made through the API), if they do not. */
export type NotFormFit = 'variants' | 'fields' | 'miniprogram' | 'audience'

/**
 * The form's values for an existing campaign (the edit form, prefilled), or what of it the form
 * cannot show: more than the A/B variants, more than {@link FORM_FIELDS} template fields, a
 * mini-program link, an audience combining a segment, a tag and/or a group (the form picks one:
 * saving it would silently widen the audience). Times are the community's wall-clock minutes.
 */
export function campaignFormValues(
  k: Pick<CampaignView, 'name' | 'audience' | 'variants' | 'schedule' | 'conversionDays'>,
  timeZone: string,
): { values: FormValues } | { notFit: NotFormFit } {
  const variants = k.variants as CampaignVariant[]
  const keys = variants.map((x) => x.key).join('')
  if (keys !== 'A' && keys !== 'AB') return { notFit: 'variants' }
  if (variants.some((x) => Object.keys(x.template.data).length > FORM_FIELDS.length))
    return { notFit: 'fields' }
  if (variants.some((x) => x.template.miniprogram)) return { notFit: 'miniprogram' }
  const a = k.audience as Audience
  if ([a.segment, a.tag, a.group].filter((x) => x !== undefined && x !== null).length > 1)
    return { notFit: 'audience' }
  const f: FormValues = {
    ...DEFAULT_VALUES,
    name: k.name,
    audienceKind: a.group ? 'group' : a.tag !== undefined ? 'tag' : a.segment ? 'segment' : 'all',
    ...(a.segment ? { segment: a.segment } : {}),
    ...(a.tag !== undefined ? { tag: String(a.tag) } : {}),
    ...(a.group ? { groupChannel: a.group.channel, groupChat: a.group.chatId } : {}),
    ab: keys === 'AB' ? '1' : '',
    conversionDays: String(k.conversionDays),
  }
  for (const x of variants) {
    const p = x.key.toLowerCase()
    f[`${p}_weight`] = String(x.weight)
    f[`${p}_template`] = x.template.template_id
    f[`${p}_url`] = x.template.url ?? ''
    const fields = Object.entries(x.template.data)
    for (const n of FORM_FIELDS) {
      f[`${p}_key${n}`] = fields[n - 1]?.[0] ?? ''
      f[`${p}_value${n}`] = fields[n - 1]?.[1].value ?? ''
    }
  }
  if (k.schedule.cron) Object.assign(f, { scheduleKind: 'cron', cron: k.schedule.cron })
  else if (k.schedule.at) {
    const at = consoleFormat('en', timeZone).dateTime(new Date(k.schedule.at))
    Object.assign(f, { scheduleKind: 'at', at: at.replace(' ', 'T') })
  }
  return { values: f }
}

/** The posted body as form values (files and repeated fields ignored). */
export function formValues(body: Record<string, unknown>): FormValues {
  const out: FormValues = {}
  for (const [k, x] of Object.entries(body)) if (typeof x === 'string') out[k] = x
  return out
}

/** The audience the values choose (undefined when a number or id is malformed). */
export function audienceOf(f: FormValues): Audience | undefined {
  const kind = f.audienceKind ?? 'all'
  if (kind === 'all') return {}
  if (kind === 'segment') return { segment: f.segment as Audience['segment'] }
  if (kind === 'tag') return /^\d{1,10}$/.test(f.tag ?? '') ? { tag: Number(f.tag) } : undefined
  if (kind === 'group')
    return { group: { channel: f.groupChannel ?? '', chatId: f.groupChat ?? '' } }
  return undefined
}

/** The instant a `YYYY-MM-DDTHH:MM` wall-clock time names in `timeZone`, or undefined. */
export function zonedInstant(local: string, timeZone: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(local)
  if (!m) return undefined
  const wall = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!)
  const offsetAt = (t: number) => {
    const p: Record<string, number> = {}
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    })
    for (const x of format.formatToParts(new Date(t))) p[x.type] = Number(x.value)
    return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!) - t
  }
  // Twice: the offset at the first guess may differ from the offset at the answer (DST).
  const first = wall - offsetAt(wall)
  return new Date(wall - offsetAt(first))
}

/**
 * A typed link as a URL parser writes it, when it is an http(s) one: `http://example.com` →
 * `http://example.com/` (the template check takes a URL only in that form); anything else as typed,
 * for the check to refuse.
 */
export function normalUrl(typed: string): string {
  if (!/^https?:\/\//i.test(typed)) return typed
  try {
    return new URL(typed).href
  } catch {
    return typed
  }
}

/** A variant's template from the values (fields with an empty name are left out). */
function templateOf(f: FormValues, key: string) {
  const p = key.toLowerCase()
  const data: Record<string, { value: string }> = {}
  for (const n of FORM_FIELDS) {
    const name = (f[`${p}_key${n}`] ?? '').trim()
    if (name) data[name] = { value: f[`${p}_value${n}`] ?? '' }
  }
  const url = normalUrl((f[`${p}_url`] ?? '').trim())
  return { template_id: (f[`${p}_template`] ?? '').trim(), data, ...(url ? { url } : {}) }
}

/** The raw input (before the schema) the values describe. */
export function rawInput(f: FormValues, timeZone: string): Record<string, unknown> {
  const ab = f.ab === '1'
  const at = zonedInstant(f.at ?? '', timeZone)
  const days = f.conversionDays ?? ''
  return {
    name: f.name ?? '',
    audience: audienceOf(f) ?? { tag: f.tag },
    ...(ab
      ? {
          variants: FORM_VARIANTS.map((key) => ({
            key,
            weight: Number(f[`${key.toLowerCase()}_weight`] || Number.NaN),
            template: templateOf(f, key),
          })),
        }
      : { template: templateOf(f, 'A') }),
    schedule: f.scheduleKind === 'cron' ? { cron: f.cron ?? '' } : { at: at?.toISOString() ?? '' },
    conversionDays: /^\d{1,3}$/.test(days) ? Number(days) : Number.NaN,
  }
}

/** A path's variant (`variants.1.…` → B, `template.…` → A) and the rest after its template. */
function splitVariant(path: string): { key: string; rest: string } | undefined {
  const variant = /^variants\.(\d)\.(?:template\.)?(.*)$/.exec(path)
  if (variant) return { key: FORM_VARIANTS[Number(variant[1])] ?? variant[1]!, rest: variant[2]! }
  const template = /^template\.(.*)$/.exec(path)
  return template ? { key: 'A', rest: template[1]! } : undefined
}

/** A variant's field (after `template.`, or `weight`) in the operator's words. */
const VARIANT_FIELDS: Record<string, MessageKey> = {
  weight: 'campaignForm.field.weight',
  template_id: 'campaignForm.field.templateId',
  url: 'campaignForm.field.url',
}

/** Form fields under `audience` and `schedule` by their path, labelled as on the form. */
const NESTED_FIELDS: Record<string, MessageKey> = {
  'audience.segment': 'campaignForm.segment',
  'audience.tag': 'campaignForm.tag',
  'audience.group.channel': 'campaignForm.groupChannel',
  'audience.group.chatId': 'campaignForm.groupChat',
}

/** The field a problem path names, in the operator's words. */
function fieldLabel(path: string, t: Translate): string {
  const variant = splitVariant(path)
  if (variant) {
    const { key, rest } = variant
    const field = /^data\.([^.]+)/.exec(rest)?.[1]
    const known = VARIANT_FIELDS[rest]
    return `${t('campaignForm.variant', { key })} · ${field ?? (known ? t(known) : rest)}`
  }
  const nested = NESTED_FIELDS[path]
  if (nested) return t(nested)
  const head = path.split('.')[0]!
  const known = ['name', 'audience', 'template', 'variants', 'schedule', 'conversionDays']
  return known.includes(head) ? t(`campaignForm.field.${head as 'name'}`) : path
}

/**
 * Why the schema refused the value at `path`, in the operator's words (valibot's own messages are
 * English); anything the form cannot send is "not valid" rather than the schema's text.
 */
const SCHEMA_REASONS: [RegExp, MessageKey][] = [
  [/^name$/, 'campaignForm.reason.name'],
  [/^audience\.segment$/, 'campaignForm.reason.segment'],
  [/^audience\.tag$/, 'campaignForm.reason.tag'],
  [/^audience\.group\.channel$/, 'campaignForm.reason.groupChannel'],
  [/^audience\.group\.chatId$/, 'campaignForm.reason.groupChat'],
  [/^conversionDays$/, 'campaignForm.reason.conversionDays'],
  [/^variants$/, 'campaignForm.reason.variants'],
  [/^variants\.\d+\.weight$/, 'campaignForm.reason.weight'],
  [/^(?:variants\.\d+\.)?template\.template_id$/, 'wechat.rule.template_id'],
  [/^(?:variants\.\d+\.)?template\.data\.[^.]+$/, 'campaignForm.reason.fieldKey'],
  [/^(?:variants\.\d+\.)?template\.url$/, 'wechat.rule.url'],
]

function schemaReason(path: string, t: Translate): string {
  const key = SCHEMA_REASONS.find(([pattern]) => pattern.test(path))?.[1]
  return t(key ?? 'campaignForm.reason.invalid', { max: MAX_CONVERSION_DAYS })
}

/** The whole-input problems (`createCampaignProblem`) that are not a template's, by their path. */
const PROBLEM_REASONS: Record<string, MessageKey> = {
  template: 'campaignForm.reason.templateOrVariants',
  variants: 'campaignForm.reason.variantKeys',
  'schedule.cron': 'campaignForm.reason.cron',
}

/** The template problem at `path` in the operator's words, by the rule WeChat's check names. */
function templateReason(input: CreateCampaignInput, path: string, t: Translate) {
  for (const [i, x] of variantsOf(input).entries()) {
    const issue = templateIssue(x.template, `variants.${i}.template`)
    if (issue?.path === path && issue.rule) return templateRuleText(t, issue.rule)
  }
  return undefined
}

/**
 * The checked input, or the first problem as `{ field, reason }` (the field in words); a one-shot
 * time that has passed at `now` is refused as the API refuses it.
 */
export function readCampaignForm(
  f: FormValues,
  timeZone: string,
  t: Translate,
  now: Date,
): { input: CreateCampaignInput } | { field: string; reason: string } {
  const parsed = v.safeParse(createCampaignInput, rawInput(f, timeZone))
  if (!parsed.success) {
    const issue = parsed.issues[0]
    const path = v.getDotPath(issue) ?? ''
    if (path.startsWith('schedule') && f.scheduleKind !== 'cron')
      return { field: t('campaignForm.field.schedule'), reason: t('campaignForm.badAt') }
    return { field: fieldLabel(path, t), reason: schemaReason(path, t) }
  }
  const problem = createCampaignProblem(parsed.output, timeZone, now)
  if (problem?.startsWith('schedule.at: '))
    return { field: t('campaignForm.field.schedule'), reason: t('campaignForm.pastAt') }
  if (problem) {
    const i = problem.indexOf(': ')
    const path = problem.slice(0, i)
    const known = PROBLEM_REASONS[path]
    const reason = known
      ? t(known)
      : (templateReason(parsed.output, path, t) ?? t('campaignForm.reason.invalid'))
    return { field: fieldLabel(path, t), reason }
  }
  return { input: parsed.output }
}
