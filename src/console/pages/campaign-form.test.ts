/**
 * The campaign form's reading of a template WeChat would refuse: the field named in the operator's
 * words and the rule in their language (the WeChat layer's check names the rule, not only English).
 */
import { describe, expect, it } from 'vitest'
import { consoleTranslator } from '../i18n.js'
import { DEFAULT_VALUES, readCampaignForm } from './campaign-form.js'

const now = new Date('2026-11-20T02:00:00Z')
const form = {
  ...DEFAULT_VALUES,
  name: '双十二',
  at: '2026-12-12T10:00',
  ab: '1',
  a_template: 'tpl_a',
  a_value1: '会员日',
  a_value2: '今晚八点',
  b_template: 'tpl_b',
  b_value1: '会员日',
  b_value2: '一二三四五六七八九十一二三四五六七八九十一二三四五六',
}

describe('the campaign form: a template WeChat would refuse', () => {
  it('names the rule in Chinese, with its figures', () => {
    const r = readCampaignForm(form, 'Asia/Shanghai', consoleTranslator('zh-CN'), now)
    expect(r).toEqual({
      field: '版本 B · thing2',
      reason: '26 个字，超过 20 字的上限（微信会截断）',
    })
  })

  it('and in English', () => {
    const r = readCampaignForm(form, 'Asia/Shanghai', consoleTranslator('en'), now)
    expect(r).toEqual({
      field: 'Variant B · thing2',
      reason: '26 characters; the limit is 20 (WeChat truncates)',
    })
  })

  it('names the other rules too (a line break)', () => {
    const broken = { ...form, b_value2: '今晚\n八点' }
    const r = readCampaignForm(broken, 'Asia/Shanghai', consoleTranslator('zh-CN'), now)
    expect(r).toEqual({ field: '版本 B · thing2', reason: '不能换行（微信会截断换行后的内容）' })
  })
})

describe('the campaign form: every other problem in the operator’s language', () => {
  const cases: [Record<string, string>, [string, string], [string, string]][] = [
    [
      { scheduleKind: 'cron', cron: '0 10 * *' },
      ['时间', '须为 5 段：分 时 日 月 周（如 0 10 * * 1）'],
      ['Schedule', 'five fields: minute hour day month weekday (e.g. 0 10 * * 1)'],
    ],
    [
      { name: ' ' },
      ['名称', '请填写名称，最多 80 个字'],
      ['Name', 'give a name of at most 80 characters'],
    ],
    [
      { b_weight: '0' },
      ['版本 B · 权重', '须为 1–100 的整数'],
      ['Variant B · weight', 'must be a whole number from 1 to 100'],
    ],
    [
      { audienceKind: 'tag', tag: 'abc' },
      ['微信标签 ID', '须为正整数'],
      ['WeChat tag id', 'must be a positive whole number'],
    ],
    [
      { a_template: 'tpl a' },
      ['版本 A · 模板 ID', '必填，只能包含字母、数字、_ 和 -'],
      ['Variant A · template id', 'required: letters, digits, _ and -'],
    ],
    [
      { a_key1: 'Thing1' },
      ['版本 A · Thing1', '字段名须为小写字母，可以数字结尾（如 thing1）'],
      ['Variant A · Thing1', 'lower-case letters, optionally ending in digits (e.g. thing1)'],
    ],
    [
      { b_url: 'not a link' },
      ['版本 B · 跳转链接', '须为完整的 http(s) 链接'],
      ['Variant B · link', 'must be an absolute http(s) URL'],
    ],
    [
      { conversionDays: '0' },
      ['转化窗口', '须为 1–60 的整数'],
      ['Conversion window', 'must be a whole number from 1 to 60'],
    ],
    [
      { audienceKind: 'group', groupChannel: 'smoke signal', groupChat: 'c1' },
      ['群渠道', '请从列表中选择群渠道'],
      ['Group channel', 'choose a group channel from the list'],
    ],
  ]
  const valid = { ...form, b_value2: '今晚八点' }

  it.each(cases)('%j', (fields, zh, en) => {
    const read = (lang: 'zh-CN' | 'en') =>
      readCampaignForm({ ...valid, ...fields }, 'Asia/Shanghai', consoleTranslator(lang), now)
    expect(read('zh-CN')).toEqual({ field: zh[0], reason: zh[1] })
    expect(read('en')).toEqual({ field: en[0], reason: en[1] })
  })

  it('takes a link without its path (http://example.com), as the URL parser writes it', () => {
    const r = readCampaignForm(
      { ...valid, a_url: ' http://example.com', b_url: 'https://Example.com?x=1' },
      'Asia/Shanghai',
      consoleTranslator('zh-CN'),
      now,
    )
    expect(r).toHaveProperty('input')
    const variants = (r as { input: { variants: { template: { url?: string } }[] } }).input.variants
    expect(variants.map((x) => x.template.url)).toEqual([
      'http://example.com/',
      'https://example.com/?x=1',
    ])
  })

  it('takes the valid form', () => {
    const r = readCampaignForm(valid, 'Asia/Shanghai', consoleTranslator('zh-CN'), now)
    expect(r).toHaveProperty('input')
  })
})
