/**
 * The operations plan's optimisation rules, as data: when a figure of the account is below its
 * line, the area's suggestions apply, each with the action that addresses it. Text is Chinese
 * (what the plan's operators read) with English beside it; `{name}` marks a figure. Action paths
 * are relative: `api` under `/admin/api/accounts/<appid>/`, `console` as the console will route it.
 */

export type AdviceKey = 'growth' | 'conversion' | 'retention' | 'aov'
type Text = { 'zh-CN': string; en: string }

/** What a suggestion links to: the operator API call, and the console page. */
export interface AdviceAction {
  label: Text
  api?: { method: 'GET' | 'POST' | 'PUT' | 'PATCH'; path: string }
  console: string
}

export interface AdviceRule {
  key: AdviceKey
  area: Text
  /** The figure (see advice.ts) and its unit: a ratio, a rate, or fen. */
  figure: 'activeVsBaseline' | 'conversion' | 'd7Retention' | 'aovFen'
  /** Advice applies when the figure is strictly below `below`; `high` priority below `severe`. */
  below: number
  severe: number
  /** The fewest events (active members, buyers' orders, cohort members) to judge at all. */
  minSample: number
  title: Text
  suggestions: { text: Text; action: AdviceAction }[]
}

/**
 * The re-engagement strategies are lifecycle journeys now (`POST campaigns/strategies` adopts the
 * seeded ones, paused; the console's 旅程 page switches them on): the advice says journey.
 */
const reEngage: AdviceAction = {
  label: { 'zh-CN': '开启流失风险召回旅程', en: 'Switch on the re-engagement journey for at_risk' },
  api: { method: 'POST', path: 'campaigns/strategies' },
  console: '/console/journeys',
}

/** The rules, in the plan's order. */
export const ADVICE_RULES: readonly AdviceRule[] = [
  {
    key: 'growth',
    area: { 'zh-CN': '用户增长', en: 'Growth' },
    figure: 'activeVsBaseline',
    below: 1,
    severe: 0.8,
    minSample: 5,
    title: {
      'zh-CN': '近 7 天日均活跃 {recent} 人，低于此前 28 天的日均 {baseline} 人（{ratio}）',
      en: 'Active members averaged {recent} a day over 7 days, below the {baseline} of the 28 days before ({ratio})',
    },
    suggestions: [
      {
        text: {
          'zh-CN': '给 30 天没来的「流失风险」用户发一轮召回：积分待兑换提醒 + 回归礼',
          en: 'Recall the at_risk members (30 days quiet): points waiting to be redeemed, a welcome-back gift',
        },
        action: reEngage,
      },
      {
        text: {
          'zh-CN': '做一张带参数二维码的活动海报，提高邀请首位奖励，拉新用户关注',
          en: 'Run an invite push: a poster with a parametric QR code and a higher first-level invite reward',
        },
        action: {
          label: { 'zh-CN': '查看邀请报表', en: 'Open the invite report' },
          api: { method: 'GET', path: 'invites/report' },
          console: '/console/invites',
        },
      },
      {
        text: {
          'zh-CN': '每天早上在社群提醒签到，连续签到 7 天、30 天有额外奖励',
          en: 'Remind the groups to check in every morning; streaks of 7 and 30 days pay a bonus',
        },
        action: {
          label: { 'zh-CN': '管理社群活动', en: 'Manage activities' },
          api: { method: 'GET', path: 'activities' },
          console: '/console/activities',
        },
      },
    ],
  },
  {
    key: 'conversion',
    area: { 'zh-CN': '转化', en: 'Conversion' },
    figure: 'conversion',
    below: 0.02,
    severe: 0.01,
    minSample: 30,
    title: {
      'zh-CN': '近 30 天活跃成员的购买转化率 {rate}（{payers}/{actives}），低于 2%',
      en: 'Purchase conversion of active members over 30 days is {rate} ({payers}/{actives}), below 2%',
    },
    suggestions: [
      {
        text: {
          'zh-CN': '上一个限时秒杀：低价引流款，限量限时，活跃用户专享',
          en: 'Start a flash sale: a low-priced item, limited stock and time, for active members',
        },
        action: {
          label: { 'zh-CN': '创建限时秒杀', en: 'Create a flash sale' },
          api: { method: 'POST', path: 'shop/products' },
          console: '/console/shop/products/new?kind=flash_sale',
        },
      },
      {
        text: {
          'zh-CN': '开一个拼团：3 人成团，让老用户带新用户一起买',
          en: 'Open a group buy: three to form, members bring friends to buy together',
        },
        action: {
          label: { 'zh-CN': '创建拼团', en: 'Create a group buy' },
          api: { method: 'POST', path: 'shop/products' },
          console: '/console/shop/products/new?kind=group_buy',
        },
      },
      {
        text: {
          'zh-CN': '给新关注用户推送首单优惠（模板消息 + 小程序商品页）',
          en: 'Send new followers a first-order offer (template message linking the product page)',
        },
        action: {
          label: { 'zh-CN': '给新用户建活动', en: 'Create a campaign for new members' },
          api: { method: 'POST', path: 'campaigns' },
          console: '/console/campaigns/new?segment=new',
        },
      },
    ],
  },
  {
    key: 'retention',
    area: { 'zh-CN': '留存', en: 'Retention' },
    figure: 'd7Retention',
    below: 0.15,
    severe: 0.1,
    minSample: 20,
    title: {
      'zh-CN': '新关注用户 7 日留存 {rate}（{retained}/{cohort}），低于 15%',
      en: 'Day-7 retention of new followers is {rate} ({retained}/{cohort}), below 15%',
    },
    suggestions: [
      {
        text: {
          'zh-CN': '给新用户一套 7 天引导：第 1 天欢迎礼、第 3 天签到提醒、第 7 天连续签到奖励',
          en: 'Onboard new members over 7 days: a welcome gift, a check-in reminder on day 3, the streak bonus on day 7',
        },
        action: {
          label: {
            'zh-CN': '开启新用户欢迎旅程',
            en: 'Switch on the welcome journey for new members',
          },
          api: { method: 'POST', path: 'campaigns/strategies' },
          console: '/console/journeys',
        },
      },
      {
        text: {
          'zh-CN': '加强签到激励：调高签到积分或连续签到奖励',
          en: 'Make checking in pay more: raise the check-in points or the streak bonus',
        },
        action: {
          label: { 'zh-CN': '调整积分规则', en: 'Edit the points rules' },
          api: { method: 'PUT', path: 'rules/checkin' },
          console: '/console/points/rules',
        },
      },
      {
        text: {
          'zh-CN': '每周固定一个话题活动，让新人有理由回来',
          en: 'Hold a weekly topic so newcomers have a reason to come back',
        },
        action: {
          label: { 'zh-CN': '创建每周活动', en: 'Create a weekly activity' },
          api: { method: 'POST', path: 'activities' },
          console: '/console/activities/new?cadence=weekly',
        },
      },
    ],
  },
  {
    key: 'aov',
    area: { 'zh-CN': '客单价', en: 'Order value' },
    figure: 'aovFen',
    below: 15_000,
    severe: 10_000,
    minSample: 10,
    title: {
      'zh-CN': '近 30 天客单价 {aov} 元（{orders} 单），低于 150 元',
      en: 'Average order value over 30 days is ¥{aov} ({orders} orders), below ¥150',
    },
    suggestions: [
      {
        text: {
          'zh-CN': '推出会员卡：会员全场折扣，提高复购和单笔金额',
          en: 'Offer a membership plan: a discount on everything raises repeat and order value',
        },
        action: {
          label: { 'zh-CN': '创建会员套餐', en: 'Create a membership plan' },
          api: { method: 'POST', path: 'shop/products' },
          console: '/console/shop/products/new?kind=membership',
        },
      },
      {
        text: {
          'zh-CN': '拼团用组合装：把常买的几样打包成一个团购价',
          en: 'Group-buy bundles: the items bought together at one group price',
        },
        action: {
          label: { 'zh-CN': '创建拼团组合', en: 'Create a group-buy bundle' },
          api: { method: 'POST', path: 'shop/products' },
          console: '/console/shop/products/new?kind=group_buy',
        },
      },
      {
        text: {
          'zh-CN': '给高等级会员（金牌、钻石）推高价新品抢先购',
          en: 'Give gold and diamond members early access to higher-priced items',
        },
        action: {
          label: { 'zh-CN': '给忠实用户建活动', en: 'Create a campaign for loyal members' },
          api: { method: 'POST', path: 'campaigns' },
          console: '/console/campaigns/new?segment=loyal',
        },
      },
    ],
  },
]
