/**
 * The one check every template an operator stores goes through (a campaign's variants, the
 * re-engagement strategies, a journey's steps): WeChat's template rules (validateTemplateMessage),
 * answered as a message naming the field instead of thrown.
 */
import { type TemplateRule, WechatValidationError } from '../wechat/api/errors.js'
import { validateTemplateMessage } from '../wechat/api/messages.js'
import type { CampaignTemplate } from './campaigns.js'

/** What is wrong with a template: the field's path, the problem in English, and the rule broken. */
export interface TemplateIssue {
  /** `<path>.<field>`, e.g. `variants.1.template.data.thing2.value`. */
  path: string
  problem: string
  rule?: TemplateRule
}

/** Why WeChat would refuse `template`, if anything, with the rule broken (for the console's words). */
export function templateIssue(template: CampaignTemplate, path: string): TemplateIssue | undefined {
  try {
    validateTemplateMessage({ touser: 'o_check', ...template })
    return undefined
  } catch (error) {
    if (error instanceof WechatValidationError)
      return { path: `${path}.${error.field}`, problem: error.problem, rule: error.rule }
    throw error
  }
}

/**
 * Why WeChat would refuse `template` (`<path>.<field>: <problem>`), if anything. Values are checked
 * as written, placeholders such as `{{points}}` included.
 * @example templateProblem(t, 'variants.0.template') // 'variants.0.template.data.first: …'
 */
export function templateProblem(template: CampaignTemplate, path: string): string | undefined {
  const issue = templateIssue(template, path)
  return issue && `${issue.path}: ${issue.problem}`
}
