/**
 * A journey's steps (data, stored as JSON in `journeys.steps`): when each goes out after the
 * segment transition, through which channel, what it says, whether the campaign frequency cap
 * applies, what counts as converting after it, and an optional points offer that expires.
 */
import type { MessageKey, Translate } from '../bot/i18n.js'
import type { OutboxKind } from '../db/schema.js'
import type { TemplateRule } from '../wechat/api/errors.js'
import type { CampaignTemplate } from './campaigns.js'
import { addDays, localDay } from './community-time.js'
import { templateIssue } from './template-problem.js'

/** What counts as converting after a step: any action, a check-in, or a purchase. */
export type JourneyGoal = 'active' | 'checkin' | 'purchase'

export const JOURNEY_GOALS: readonly JourneyGoal[] = ['active', 'checkin', 'purchase']

/** One step of a journey. */
export interface JourneyStep {
  /** A short name, unique in the journey (reports). */
  key: string
  /** Hours after the transition (non-decreasing from step to step). */
  delayHours: number
  /**
   * `custom`: a customer-service text (inside the member's 48-hour window), with `template` sent
   * instead when the window is closed; `template`: a template message.
   */
  channel: 'custom' | 'template'
  /** The text from the bot's catalogue (the seeded journeys), or the operator's own `text`. */
  message?: MessageKey
  text?: string
  template?: CampaignTemplate
  /** Whether the campaign frequency cap applies (and counts this push), as for campaigns. */
  cap: boolean
  goal: JourneyGoal
  /** Points credited when the member converts within `days` of this step (a coupon that expires). */
  offer?: { points: number; days: number }
}

/** After its last step a journey waits this long for a conversion before it is completed. */
export const JOURNEY_TAIL_DAYS = 7

/** The outbox source prefix of a journey's pushes (`journey:<id>:<step>:<enrollment>`). */
export const journeySourcePrefix = (journeyId: number) => `journey:${journeyId}:`

/**
 * Why a journey's steps cannot run, with the field's path, the problem in English and its `code`
 * (and the step's `key`, and the template rule broken, for the console's words), if anything.
 */
export type JourneyStepsIssue = {
  path: string
  problem: string
  step?: string
} & (
  | { code: 'no_steps' | 'delay_order' | 'template_required' | 'text_required' | 'keys_differ' }
  | { code: 'template'; rule?: TemplateRule }
)

/**
 * Why a journey's steps cannot run, if anything: none, delays that go back, a template step
 * without a template, a custom step without text, a template (a template step's, or a custom
 * step's fallback) WeChat would refuse, repeated keys.
 */
export function journeyStepsIssue(steps: JourneyStep[]): JourneyStepsIssue | undefined {
  if (steps.length === 0) return { path: 'steps', problem: 'at least one', code: 'no_steps' }
  for (const [i, s] of steps.entries()) {
    const step = s.key
    if (i > 0 && s.delayHours < steps[i - 1]!.delayHours)
      return {
        path: `steps.${i}.delayHours`,
        problem: 'not before the step before it',
        code: 'delay_order',
        step,
      }
    if (s.channel === 'template' && !s.template)
      return { path: `steps.${i}.template`, problem: 'required', code: 'template_required', step }
    if (s.channel === 'custom' && !s.message && !s.text)
      return { path: `steps.${i}.text`, problem: 'required', code: 'text_required', step }
    const template = s.template && templateIssue(s.template, `steps.${i}.template`)
    if (template) return { ...template, code: 'template', step }
  }
  if (new Set(steps.map((s) => s.key)).size !== steps.length)
    return { path: 'steps', problem: 'keys must differ', code: 'keys_differ' }
  return undefined
}

/**
 * Why a journey's steps cannot run (`<path>: <problem>`, naming the step and field), if anything
 * ({@link journeyStepsIssue}).
 */
export function journeyStepsProblem(steps: JourneyStep[]): string | undefined {
  const issue = journeyStepsIssue(steps)
  return issue && `${issue.path}: ${issue.problem}`
}

/** The values a step's copy may use besides {{points}} and {{level}} (filled per member). */
function offerVars(step: JourneyStep, now: Date, timeZone: string): Record<string, string> {
  if (!step.offer) return {}
  return {
    offer: String(step.offer.points),
    days: String(step.offer.days),
    expires: addDays(localDay(now, timeZone), step.offer.days),
  }
}

const fill = (s: string, vars: Record<string, string>) =>
  s.replace(/\{\{(\w+)\}\}/g, (all, name: string) => vars[name] ?? all)

/**
 * The outbox message of a step sent at `now`, as JSON text with `{{points}}` and `{{level}}` left
 * for the statement that enqueues it to fill per member.
 */
export function stepMessage(
  step: JourneyStep,
  t: Translate,
  now: Date,
  timeZone: string,
): { kind: OutboxKind; payload: string; fallback: string | null } {
  const vars = offerVars(step, now, timeZone)
  const template = step.template && {
    template_id: step.template.template_id,
    data: Object.fromEntries(
      Object.entries(step.template.data).map(([k, v]) => [k, { value: fill(v.value, vars) }]),
    ),
    ...(step.template.url ? { url: step.template.url } : {}),
    ...(step.template.miniprogram ? { miniprogram: step.template.miniprogram } : {}),
  }
  if (step.channel === 'template')
    return { kind: 'template', payload: JSON.stringify(template), fallback: null }
  const content = step.text
    ? fill(step.text, vars)
    : t(step.message!, { ...vars, points: '{{points}}', level: '{{level}}' })
  return {
    kind: 'custom',
    payload: JSON.stringify({ msgtype: 'text', text: { content } }),
    fallback: template ? JSON.stringify({ kind: 'template', payload: template }) : null,
  }
}
