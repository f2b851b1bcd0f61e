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
} as const

/** Every message key. */
export type MessageKey = keyof typeof zhCN
