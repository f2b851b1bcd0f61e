/**
 * What an operator writes to make a campaign: the schemas (API bodies and console forms alike) and
 * the checks that look at the input as a whole.
 */
import * as v from 'valibot'
import type { CampaignDefinition } from '../../community/campaign-edit.js'
import { sendTimePassed } from '../../community/campaign-lifecycle.js'
import { MAX_CONVERSION_DAYS } from '../../community/campaigns.js'
import { SEGMENTS } from '../../community/segments.js'
import { templateProblem } from '../../community/template-problem.js'
import { cronMatches } from '../../cron.js'
import { httpUrl, int, timestamp } from '../../routes/validate.js'

/** A template message (without `touser`): what a campaign variant sends. */
export const campaignTemplate = v.strictObject({
  template_id: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a template id')),
  data: v.record(
    v.pipe(v.string(), v.regex(/^[a-z_]+\d*$/)),
    v.strictObject({ value: v.string() }),
  ),
  url: v.optional(httpUrl()),
  miniprogram: v.optional(
    v.strictObject({ appid: v.string(), pagepath: v.pipe(v.string(), v.maxLength(256)) }),
  ),
})

/**
 * The input of `createCampaign` (`POST campaigns`) and `updateCampaign` (`PATCH campaigns/:id`): a
 * template or A/B variants, never both.
 */
export const createCampaignInput = v.strictObject({
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(80)),
  audience: v.strictObject({
    segment: v.optional(v.picklist([...SEGMENTS], `one of ${SEGMENTS.join(', ')}`)),
    tag: v.optional(int(1)),
    group: v.optional(
      v.strictObject({
        channel: v.pipe(v.string(), v.regex(/^(wecom_aibot|wecom_customer|bridge:[\w-]{1,40})$/)),
        chatId: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
      }),
    ),
  }),
  template: v.optional(campaignTemplate),
  variants: v.optional(
    v.pipe(
      v.array(
        v.strictObject({
          key: v.pipe(v.string(), v.regex(/^[A-Z]$/, 'a capital letter')),
          weight: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)),
          template: campaignTemplate,
        }),
      ),
      v.minLength(2, 'at least two variants (or use template)'),
      v.maxLength(5),
    ),
  ),
  schedule: v.union([
    v.strictObject({ cron: v.string() }),
    v.strictObject({ at: timestamp('an ISO 8601 time with an offset') }),
  ]),
  conversionDays: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_CONVERSION_DAYS)),
    7,
  ),
})
export type CreateCampaignInput = v.InferOutput<typeof createCampaignInput>

/**
 * The input of `createStrategyJourneys` (`POST campaigns/strategies`): each segment's template
 * (`cron` is accepted and no longer used).
 */
export const strategiesInput = v.strictObject({
  templates: v.strictObject({
    new: campaignTemplate,
    at_risk: campaignTemplate,
    loyal: campaignTemplate,
  }),
  cron: v.optional(v.string(), '0 10 * * *'),
})
export type StrategiesInput = v.InferOutput<typeof strategiesInput>

/**
 * What is wrong with a strategies input as a whole (a message naming the field), if anything: a
 * template WeChat would refuse (`templates.<segment>.…`), a cron that is not five fields.
 */
export function strategiesProblem(input: StrategiesInput, timeZone: string): string | undefined {
  for (const [segment, template] of Object.entries(input.templates)) {
    const problem = templateProblem(template, `templates.${segment}`)
    if (problem) return problem
  }
  if (!isCron(input.cron, timeZone)) return 'cron: five fields (min hour dom mon dow)'
  return undefined
}

/** Whether `cron` is five fields the scheduler understands. */
export function isCron(cron: string, timeZone: string): boolean {
  try {
    cronMatches(cron, new Date(), timeZone)
    return true
  } catch {
    return false
  }
}

/** The campaign's variants: the given ones, or its one template as variant A. */
export const variantsOf = (input: CreateCampaignInput) =>
  input.variants ?? [{ key: 'A', weight: 100, template: input.template! }]

/** The campaign's columns an input sets (on create, and on update). */
export const definitionOf = (input: CreateCampaignInput): CampaignDefinition => ({
  name: input.name,
  audience: JSON.stringify(input.audience),
  variants: JSON.stringify(variantsOf(input)),
  schedule_cron: 'cron' in input.schedule ? input.schedule.cron : null,
  run_at: 'at' in input.schedule ? new Date(input.schedule.at) : null,
  conversion_days: input.conversionDays,
})

/**
 * What is wrong with a campaign input as a whole (a message naming the field), if anything:
 * template and variants both or neither, repeated variant keys, a template WeChat would refuse, a
 * cron that is not five fields, a one-shot time that has passed at `now` (the campaigns job would
 * send it at once: `sendTimePassed`).
 */
export function createCampaignProblem(
  input: CreateCampaignInput,
  timeZone: string,
  now: Date,
): string | undefined {
  if ((input.template === undefined) === (input.variants === undefined))
    return 'template: give template or variants (not both)'
  const variants = variantsOf(input)
  if (new Set(variants.map((x) => x.key)).size !== variants.length)
    return 'variants: keys must differ'
  for (const [i, x] of variants.entries()) {
    const problem = templateProblem(x.template, `variants.${i}.template`)
    if (problem) return problem
  }
  if ('cron' in input.schedule && !isCron(input.schedule.cron, timeZone))
    return 'schedule.cron: five fields (min hour dom mon dow)'
  if ('at' in input.schedule && sendTimePassed(new Date(input.schedule.at), now))
    return `schedule.at: ${PASSED} (it is ${now.toISOString()})`
  return undefined
}

/** Why a one-shot time that has passed is refused (the API's 400 and 409 say it alike). */
export const PASSED =
  'the send time has passed: give the current minute or later (a one-shot campaign is sent at its time)'
