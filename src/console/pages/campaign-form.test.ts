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
