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
  'command.checkin': 'daily check-in, streaks earn bonuses',
  'command.points': 'your points, level and progress',
  'command.me': 'your profile: points, level, check-ins',
  'checkin.done': 'Checked in ✅ +{points} points\nStreak: {streak} days',
  'checkin.bonus': '{streak}-day streak bonus +{bonus} points 🎁',
  'checkin.already': 'Already checked in today, see you tomorrow!\nStreak: {streak} days',
  'checkin.closed': 'Check-in is open {from}–{to}. Please come back then.',
  'points.summary': 'Points: {balance}, level: {level}',
  'points.next': '{missing} more points to reach {next}',
  'points.top': 'You are at the top level, {level} 🎉',
  'points.levelUp': 'Level up: {level}! You now earn {multiplier}× points 🎉',
  'me.summary':
    'My profile\nPoints {balance} (earned {lifetime})\nLevel {level}\nStreak {streak} days, {total} check-ins\n{today}',
  'me.checkedIn': 'Checked in today',
  'me.notCheckedIn': 'Not checked in yet today: send "checkin"',
  'level.bronze': 'Bronze',
  'level.silver': 'Silver',
  'level.gold': 'Gold',
  'level.diamond': 'Diamond',
}
