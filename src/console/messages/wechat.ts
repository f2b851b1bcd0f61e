/**
 * WeChat's template rules (src/wechat/api/messages.ts, `TemplateRule`) in the operator's words, for
 * the forms that store templates: Chinese, and English with the same keys.
 */
export const zhCN = {
  'wechat.rule.required': '必填',
  'wechat.rule.template_id': '必填，只能包含字母、数字、_ 和 -',
  'wechat.rule.colour': '2023-05-04 起微信不再支持颜色，请删除',
  'wechat.rule.url': '须为完整的 http(s) 链接',
  'wechat.rule.mp_appid': '须为小程序 AppID',
  'wechat.rule.client_msg_id': '须为 1–64 个字符',
  'wechat.rule.no_keywords': '至少需要一个字段',
  'wechat.rule.first_remark': '2023-05-04 起微信不再显示 first/remark，请删除',
  'wechat.rule.not_string': '须为文字',
  'wechat.rule.line_break': '不能换行（微信会截断换行后的内容）',
  'wechat.rule.emoji': '不能包含表情符号',
  'wechat.rule.too_long': '{length} 个字，超过 {max} 字的上限（微信会截断）',
} as const

export const en: Record<keyof typeof zhCN, string> = {
  'wechat.rule.required': 'required',
  'wechat.rule.template_id': 'required: letters, digits, _ and -',
  'wechat.rule.colour': 'colours are ignored since 2023-05-04; remove it',
  'wechat.rule.url': 'must be an absolute http(s) URL',
  'wechat.rule.mp_appid': 'must be a mini-program AppID',
  'wechat.rule.client_msg_id': 'must be 1–64 characters',
  'wechat.rule.no_keywords': 'at least one field is required',
  'wechat.rule.first_remark': 'first/remark are not shown since 2023-05-04; remove it',
  'wechat.rule.not_string': 'must be text',
  'wechat.rule.line_break': 'no line breaks (WeChat truncates the value there)',
  'wechat.rule.emoji': 'emoji are not allowed',
  'wechat.rule.too_long': '{length} characters; the limit is {max} (WeChat truncates)',
}
