/** What the bot says, in Simplified Chinese (the default). `{name}` marks a parameter. */
export const zhCN = {
  welcome: '欢迎关注！我是圈子小助手 🎉\n发送「帮助」看看我能为你做什么。',
  'welcome.scene': '欢迎关注！你是通过「{scene}」来到这里的 🎉\n发送「帮助」看看我能为你做什么。',
  'help.title': '你可以发送这些指令：',
  'help.line': '· {names} — {description}',
  'help.footer': '指令不区分大小写，中英文都可以。',
  'command.help': '查看可用指令',
  'fallback.text': '我还不太明白「{text}」。发送「帮助」查看可用指令。',
  'fallback.media': '收到啦！我目前只能理解文字指令，发送「帮助」查看可用指令。',
  'error.generic': '系统开小差了，请稍后再试。',
  'command.checkin': '每日签到，连续签到有奖励',
  'command.points': '查看积分、等级和升级进度',
  'command.me': '我的资料：积分、等级、签到',
  'checkin.done': '签到成功 ✅ +{points} 积分\n已连续签到 {streak} 天',
  'checkin.bonus': '连续 {streak} 天奖励 +{bonus} 积分 🎁',
  'checkin.already': '今天已经签到过啦，明天再来～\n已连续签到 {streak} 天',
  'checkin.closed': '现在不在签到时间（{from}–{to}），请稍后再来。',
  'points.summary': '当前积分 {balance}，等级 {level}',
  'points.next': '再获得 {missing} 积分即可升级为 {next}',
  'points.top': '你已是最高等级 {level} 🎉',
  'points.levelUp': '恭喜升级为 {level}！赚取积分 {multiplier} 倍 🎉',
  'me.summary':
    '我的资料\n积分 {balance}（累计 {lifetime}）\n等级 {level}\n连续签到 {streak} 天，共签到 {total} 天\n{today}',
  'me.checkedIn': '今天已签到',
  'me.notCheckedIn': '今天还没签到，发送「签到」领取积分',
  'level.bronze': '铜牌',
  'level.silver': '银牌',
  'level.gold': '金牌',
  'level.diamond': '钻石',
} as const

/** Every message key. */
export type MessageKey = keyof typeof zhCN
