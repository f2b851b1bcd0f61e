import type { MessageKey } from './zh-CN.js'

/** What the bot says, in English. */
export const en: Record<MessageKey, string> = {
  welcome: 'Welcome! I am the quanzi assistant 🎉\nSend "help" to see what I can do.',
  'welcome.scene': 'Welcome! You came here through "{scene}" 🎉\nSend "help" to see what I can do.',
  'help.title': 'You can send these commands:',
  'help.line': '· {names} — {description}',
  'help.footer': 'Commands are case-insensitive, in Chinese or English.',
  'command.help': 'list the commands',
  'fallback.text': 'I did not understand "{text}". Send "help" to see the commands.',
  'fallback.media': 'Got it! I only understand text commands for now. Send "help" to see them.',
  'error.generic': 'Something went wrong on our side. Please try again later.',
}
