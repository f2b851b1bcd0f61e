/**
 * The one check every template an operator stores goes through (a campaign's variants, the
 * re-engagement strategies, a journey's steps): WeChat's template rules (validateTemplateMessage),
 * answered as a message naming the field instead of thrown.
 */
import { WechatValidationError } from '../wechat/api/errors.js'
import { validateTemplateMessage } from '../wechat/api/messages.js'
import type { CampaignTemplate } from './campaigns.js'

/**
 * Why WeChat would refuse `template` (`<path>.<field>: <problem>`), if anything. Values are checked
 * as written, placeholders such as `{{points}}` included.
 * @example templateProblem(t, 'variants.0.template') // 'variants.0.template.data.first: …'
 */
export function templateProblem(template: CampaignTemplate, path: string): string | undefined {
  try {
    validateTemplateMessage({ touser: 'o_check', ...template })
    return undefined
  } catch (error) {
    if (error instanceof WechatValidationError) return `${path}.${error.message}`
    throw error
  }
}
