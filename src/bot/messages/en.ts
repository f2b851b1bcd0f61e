import type { MessageKey } from './zh-CN.js'

/** What the bot says, in English. */
export const en: Record<MessageKey, string> = {
  welcome: 'Welcome! I am the quanzi assistant 🎉\nSend "help" to see what I can do.',
  'welcome.scene': 'Welcome! You came here through "{scene}" 🎉\nSend "help" to see what I can do.',
  'welcome.back':
    'Welcome back! 🎉 Your points and level are still here ({balance} {balance|point|points}).\nSend "checkin" to keep earning, "help" to see what I can do.',
  'scan.already': 'You are already following 👋 Send "help" to see what I can do.',
  'scan.scene':
    'You are already following 👋 This is the "{scene}" code, thanks for dropping by.\nSend "help" to see what I can do.',
  'scan.invite':
    'You are already following 👋 Invites count only for friends who follow for the first time, so this scan earns the inviter nothing.\nWant to invite friends? Send "invite" for your own code.',
  'scan.ownInvite':
    'This is your own invite code 😊 Share it with friends who do not follow yet: their follow counts as your invite.',
  'invite.notCounted':
    'Invites count only for friends who follow for the first time, so this follow earns the inviter nothing.',
  greeting:
    'Hi 👋 I am the quanzi assistant: check in, collect points, join community activities.\nTry:\n· checkin — points every day\n· rank — who is most active this week\n· invite — invite friends and earn together\nSend "help" for every command.',
  'help.title': 'You can send:',
  'help.group': '{group}: {commands}',
  'help.group.daily': 'Daily',
  'help.group.points': 'Points',
  'help.group.invite': 'Invite',
  'help.group.activity': 'Activities',
  'help.group.settings': 'Settings',
  'help.group.moderator': 'Moderators',
  'help.arg.code': '<code>',
  'help.arg.name': '<name>',
  'help.line': '· {names} — {description}',
  'help.footer':
    'Send "help checkin" to learn about one command; Chinese or English both work (e.g. 帮助 / help).',
  'command.help': 'list the commands',
  'fallback.text': 'I did not understand "{text}". Send "help" to see the commands.',
  'fallback.media': 'Got it! I only understand text commands for now. Send "help" to see them.',
  'error.generic': 'Something went wrong on our side. Please try again later.',
  'command.checkin': 'daily check-in, streaks earn bonuses',
  'command.points': 'your points, level and progress',
  'command.me': 'your profile: points, level, check-ins, badges',
  'checkin.done':
    'Checked in ✅ +{points} {points|point|points}\nStreak: {streak} {streak|day|days}',
  'checkin.bonus': '{streak}-day streak bonus +{bonus} {bonus|point|points} 🎁',
  'checkin.dailyLogin':
    'Daily visit bonus +{points} {points|point|points} (your first message today)',
  'checkin.already':
    'Already checked in today, see you tomorrow!\nStreak: {streak} {streak|day|days}',
  'checkin.closed': 'Check-in is open {from}–{to}. Please come back then.',
  'help.arg.day': '[date]',
  'command.makeup':
    'fill a recently missed check-in day (costs points, limited per month; "makeup 11-20" for a date)',
  'makeup.done':
    'Made up ✅ {day} is filled, {cost} {cost|point|points} spent\nStreak: {streak} {streak|day|days}',
  'makeup.doneFree': 'Made up ✅ {day} is filled\nStreak: {streak} {streak|day|days}',
  'makeup.quota': 'Make-ups for month {month}: {used}/{limit}',
  'makeup.disabled': 'Make-up check-ins are not available.',
  'makeup.today': 'No need to make up today: just send "checkin".',
  'makeup.future': '{day} has not come yet: it cannot be made up.',
  'makeup.tooOld':
    'Only days missed in the last {days} {days|day|days} can be made up (from {earliest}).',
  'makeup.beforeFollow':
    'You were not following us on {day}: it cannot be made up (from {follow}).',
  'makeup.already': 'You checked in on {day} already: nothing to make up.',
  'makeup.none': 'No missed day in the last {days} {days|day|days} 👍',
  'makeup.limit': 'No make-ups left for month {month} ({limit} a month).',
  'makeup.insufficient': 'Not enough points: making up {day} costs {cost}, you have {balance}.',
  'makeup.badDay':
    'I could not read the date "{text}". Send "makeup" for the latest missed day, or "makeup 11-20" for a date.',
  'checkin.makeupHint':
    'Streak broken? Send "makeup" to fill a missed day ({cost} {cost|point|points}, {left} left this month)',
  'checkin.monthly':
    '{days} {days|check-in|check-ins} this month: bonus +{bonus} {bonus|point|points} 🎁',
  'makeup.monthly':
    '{days} {days|check-in|check-ins} in month {month}: bonus +{bonus} {bonus|point|points} 🎁',
  'me.month': 'This month: {days} {days|check-in|check-ins}, {used}/{limit} make-ups',
  'points.summary': 'Points: {balance}, level: {level}',
  'points.next': '{missing} more points to reach {next}',
  'points.top': 'You are at the top level, {level} 🎉',
  'points.pending':
    'Pending: {points} {points|point|points} from purchases, available from {at} (a refund cancels them)',
  'points.expiring': '{points} of them are valid until {date}; use them before then',
  'points.expiryNotice':
    '{points} of your points are valid until {date} and expire after that. Send "redeem" to see what they can buy 🎁',
  'points.changed': 'Points {delta} ({reason}); balance {balance}',
  'points.levelUp': 'Level up: {level}! You now earn {multiplier}× points 🎉',
  'me.summary':
    'My profile\nName {name}\nPoints {balance} (earned {lifetime})\nLevel {level}\nStreak {streak} {streak|day|days}, {total} {total|check-in|check-ins}\n{today}',
  'me.noName': 'not set (shown as "{masked}" in the ranking; send "name <name>" to set one)',
  'me.checkedIn': 'Checked in today',
  'me.notCheckedIn': 'Not checked in yet today: send "checkin"',
  'command.leaderboard': 'this week\'s ranking ("rank all" for all time)',
  'leaderboard.week': "This week's ranking",
  'leaderboard.all': 'All-time ranking',
  'leaderboard.line': '{rank}. {name} — {points}',
  'leaderboard.member': 'member·{tag}',
  'leaderboard.you': 'you',
  'leaderboard.youNamed': '{name} (you)',
  'leaderboard.me': 'Your rank: #{rank} ({points} {points|point|points})',
  'leaderboard.meNone': 'You are not ranked yet: send "checkin" to earn points',
  'leaderboard.empty': 'Nobody is ranked yet. Check in to be the first!',
  'command.redeem': 'redeem points for rewards ("redeem <number>")',
  'redeem.title': 'Rewards (you have {balance} {balance|point|points})',
  'redeem.item': '{code}. {name} — {cost} {cost|point|points}{stock}',
  'redeem.stock': ' ({stock} left)',
  'redeem.soldOut': ' (sold out)',
  'redeem.hint': 'Send "redeem <number>", e.g. "redeem 1"',
  'redeem.page': 'redeem page {page}',
  'redeem.empty': 'No rewards are available right now.',
  'redeem.done':
    'Redeemed 🎁 {name}\nCode: {code}\n{cost} {cost|point|points} spent, {balance} left',
  'redeem.cancelled':
    'This redemption of "{name}" was cancelled; its {cost} {cost|point|points} were returned.',
  'redeem.notFound': 'There is no reward number {code}. Send "redeem" to see the list.',
  'redeem.outOfStock': '"{name}" is sold out.',
  'redeem.limit': '"{name}" can be redeemed at most {limit} {limit|time|times} per member.',
  'redeem.insufficient': 'Not enough points: "{name}" costs {cost}, you have {balance}.',
  'redeem.cashback':
    'Redeemed 💰 {name}\nOpen the mini program within 24 hours and confirm: ¥{yuan} goes to your WeChat wallet: {link}\n{cost} {cost|point|points} spent, {balance} left',
  'redeem.cashbackLink':
    '<a href="https://mp.weixin.qq.com" data-miniprogram-appid="{appid}" data-miniprogram-path="{path}">Open the mini program</a>',
  'redeem.needsMiniProgram':
    '"{name}" is paid to your WeChat wallet: sign in to the mini program once first: {link}\nThen send "redeem {code}" again.',
  'redeem.unavailable': '"{name}" cannot be redeemed right now (cashback is not set up).',
  'redeem.similar': '💡 Members like you also redeemed: {items}',
  'redeem.popular': '🔥 Popular now: {items}',
  'redeem.recItem': '{name} (redeem {code})',
  'campaign.recFallback': 'Points rewards',
  'cashback.paid': '💰 Your ¥{yuan} cashback is in your WeChat wallet.',
  'cashback.returned':
    'Your ¥{yuan} cashback did not go through ({reason}); {points} {points|point|points} are back, you have {balance}.',
  'cashback.reason.expired': 'not confirmed within 24 hours',
  'cashback.reason.cancelled': 'cancelled',
  'cashback.reason.failed': 'the transfer failed',
  'me.perks': 'Perks: {perks}',
  'me.badges': 'Badges ({count}): {badges}',
  'me.badgesSome': 'Badges ({count}): {badges} and more',
  'badge.awarded': '🏅 New badge "{name}": {description}',
  'badge.awardedBare': '🏅 New badge "{name}"',
  'perks.bronze': '1× points on check-ins and activities',
  'perks.silver': '2× points, priority sign-up for member events',
  'perks.gold': '3× points, early access to new products, birthday gift',
  'perks.diamond': '5× points, dedicated service, invitations to offline events',
  'command.invite': 'my personal invite QR code',
  'invite.title': 'Invite friends, earn points together 🎁',
  'invite.description.checkin':
    'When a friend follows through your code and checks in for the first time, you get {points} {points|point|points}{chain}.\nInvite code {code}, valid until {until}.',
  'invite.description.follow':
    'When a friend follows through your code, you get {points} {points|point|points}{chain}.\nInvite code {code}, valid until {until}.',
  'invite.chain': '; when they invite others, you also get {amounts} {amounts|point|points}',
  'invite.unavailable': 'The invite QR code cannot be made right now, please try again later.',
  'invite.paid':
    '🎉 A friend you invited joined: +{points} {points|point|points}, balance {balance}',
  'invite.paidChain':
    '🎉 A level-{level} friend of yours invited someone: +{points} {points|point|points}, balance {balance}',
  'welcome.invited':
    'Welcome! A friend invited you 🎉\nSend "checkin" every day to earn points, "help" to see what I can do.',
  'welcome.inviteCheckin': 'Your first check-in rewards the friend who invited you.',
  'command.optout': 'stop campaign messages ("optin" to undo)',
  'command.optin': 'receive campaign messages again',
  'optout.done':
    'You will no longer receive campaign messages. Send "optin" to receive them again.',
  'optin.done': 'Campaign messages are back on 🎉 Send "optout" to stop them any time.',
  'journey.welcome.day0':
    'Welcome aboard! 🎉 Send "checkin" every day to earn points and "redeem" them for rewards. You have {points} {points|point|points}.\nReply "optout" to stop these messages.',
  'journey.welcome.day1':
    'Check in again today ✅ Streaks earn bonuses: send "checkin".\nReply "optout" to stop these messages.',
  'journey.welcome.day3':
    'Three days already! See what you can redeem: send "redeem". Your level: {level}.\nReply "optout" to stop these messages.',
  'journey.recall.offer':
    'Long time no see! Come back and check in within {days} {days|day|days} for {offer} bonus points (valid until {expires}).\nReply "optout" to stop these messages.',
  'journey.vip.invite':
    'Thank you for being with us! As a loyal member ({level}) your VIP perks are ready: send "redeem" to see them.\nReply "optout" to stop these messages.',
  'command.activities': 'community activities',
  'command.join': 'sign up for an activity ("join topic")',
  'command.leave': 'cancel a sign-up',
  'activity.title': 'Community activities:',
  'activity.line': '· {name} ({key}) — {description}',
  'activity.linePoints': ' (you get {points} {points|point|points} for taking part)',
  'activity.footer': 'Send "join <code>" to take part, e.g. "join topic".',
  'activity.page': 'activities {page}',
  'list.more': 'Page {page} of {pages}: send "{next}" for the next page.',
  'list.last': 'Page {page} of {pages} (the last).',
  'list.beyond': 'There is no page {page} (there are {pages}). Send "{first}" for page 1.',
  'reply.truncated': '… (too long; the rest is not shown)',
  'activity.which': 'Which activity? e.g. "join topic". Send "activities" for the list.',
  'activity.confirmed': 'You are in ✅ "{name}" — we will remind you before it starts.',
  'activity.waitlisted':
    '"{name}" is full: you are number {position} on the waitlist and move up when someone leaves.',
  'activity.already': 'You are already signed up for "{name}".',
  'activity.needsPurchase': '"{name}" needs a purchase on record.',
  'activity.closed': '"{name}" is not open for sign-ups.',
  'activity.unknown': 'No activity "{ref}". Send "activities" for the list.',
  'activity.cancelled': 'Your sign-up is cancelled.',
  'activity.notSignedUp': 'You are not signed up for that activity.',
  'activity.reminder': '⏰ {name}: {description}',
  'activity.invitation': '📣 {name}: {description}\nReply "join {key}" to take part.',
  'activity.checkinReminder': '⏰ {name}: {description}\nSend "unremind" to stop these reminders.',
  'activity.promoted':
    '🎉 A place opened up: you are off the waitlist and in "{name}" — we will remind you before it starts.',
  'command.bind': 'get a code to link your WeCom or mini-program account',
  'binding.code':
    'Your binding code: {code} (valid {minutes} {minutes|minute|minutes})\nIn the WeCom group, @mention the bot with "bind {code}" to link your account; then you can check in and ask for points there. In the mini program, enter the code under Me › Link account: its orders and points join these.',
  'group.welcome':
    'Hi! I am the quanzi assistant. @mention me with "checkin", "points" or "rank"; the first time, send "bind" to the official account for a binding code.',
  'group.bound': 'Linked ✅ You can check in and ask for points here now.',
  'group.badCode':
    'That binding code is invalid or expired: send "bind" to the official account for a new one.',
  'group.bindTooFast': 'Too many binding attempts: try again in {seconds} s.',
  'group.bindFirst':
    'I do not know you yet: send "bind" to the official account for a code, then @mention me with "bind <code>".',
  'group.noAnswer': 'That answer cannot be shown here; see the official account.',
  'command.grant': '(moderators) grant points: grant <member> <n> <reason>',
  'command.deduct': '(moderators) deduct points: deduct <member> <n> <reason>',
  'command.announce': '(moderators) post an announcement',
  'command.open': '(moderators) open an activity',
  'command.close': '(moderators) close an activity',
  'mod.refused': 'That is a moderator command; you are not a moderator here.',
  'mod.pointsUsage':
    'Usage: grant <member> <n> <reason> (member: OA openid or a linked WeCom account)',
  'mod.noMember': 'No member "{who}".',
  'mod.insufficient': 'Not enough points: the balance is {balance}.',
  'mod.pointsDone': 'Points {delta} for {who}; balance {balance}.',
  'mod.announceUsage': 'Usage: announce <text>',
  'mod.announcement': '📢 Announcement: {text}',
  'mod.announceTooLong':
    'The announcement is too long ({bytes} bytes) and was not sent: a WeChat message holds {max} bytes (about {chars} Chinese characters). Shorten it and send it again.',
  'mod.announced': 'Announced in {groups} groups and to {followers} followers.',
  'mod.announceLimited': 'Too many announcements (20 a minute per group): try again shortly.',
  'mod.opened': '"{name}" is open.',
  'mod.closed': '"{name}" is closed.',
  'command.joinGroup': 'your own QR into the community groups (joins count as invites)',
  'joinGroup.title': 'Join the community groups 👥',
  'joinGroup.description':
    'Your personal join QR: friends who join through it count as your invites.',
  'joinGroup.unavailable': 'The community groups are not open yet.',
  'leaderboard.groupSuffix': ' (this group)',
  'command.nickname': 'set the name shown in the ranking (1–16 characters)',
  'nickname.current':
    'Your name is "{name}". Send "name <new name>" to change it (1–16 characters).',
  'nickname.none':
    'You have no name yet: the ranking shows you as "{masked}". Send "name <your name>" to set one (1–16 characters).',
  'nickname.done': 'Done: you are "{name}" from now on ✅ The ranking shows this name.',
  'nickname.tooLong': 'A name has at most {max} characters: please pick a shorter one.',
  'nickname.control': 'A name is one line of text, without line breaks or control characters.',
  'nickname.denied': 'A name cannot contain "{word}": please pick another one.',
  'command.details': 'your profile (name, birthday month, city): complete it to earn points',
  'help.arg.details': '<field> <value>',
  'details.summary': 'My details\nName {nickname}\nBirthday {birthday}\nCity {city}',
  'details.unset': 'not set',
  'details.month': 'month {month}',
  'details.next.nickname': 'Next: send "details name <your name>"',
  'details.next.birthMonth': 'Next: send "details birthday May" (your birthday month)',
  'details.next.city': 'Next: send "details city Hangzhou" (your city)',
  'details.reward':
    'Fill in name, birthday month and city to earn {points} {points|point|points} 🎁',
  'details.complete': 'Your details are complete ✅',
  'details.saved': 'Saved ✅',
  'details.awarded': 'Details complete 🎉 +{points} {points|point|points}, balance {balance}',
  'details.usage': 'Usage: details name Tom / details birthday May / details city Hangzhou',
  'details.badMonth': 'A birthday month is 1–12 or a month name, e.g. "details birthday May".',
  'details.badCity': 'A city is 1–20 letters, e.g. "details city Hangzhou".',
  'level.bronze': 'Bronze',
  'level.silver': 'Silver',
  'level.gold': 'Gold',
  'level.diamond': 'Diamond',
  'alert.open': '⚠️ [alert] {text}',
  'alert.repeat': '⚠️ [alert, open {minutes} min] {text}',
  'alert.rule.active_members_drop':
    'Active members {drop} below the same time last week: {actives} so far today, {baseline} then (threshold {threshold}).',
  'alert.rule.error_rate':
    'Error rate {rate}: {errors} of {total} pushes and sends in the last {window} {window|minute|minutes} went wrong (failed {failed}, refused {refused}, send failed {sendFailed}; threshold {threshold}).',
  'alert.rule.campaign_conversion_drop':
    'Campaign "{name}": its latest run converted {rate}, down {drop} from {trailing} (threshold {threshold}).',
  'alert.rule.reply_latency_p95':
    'Slow replies: p95 {p95} s over {count} pushes in the last {window} {window|minute|minutes} (threshold {threshold}).',
  'alert.rule.outbox_backlog':
    'Outbox backlog ({lane}): the oldest due item has waited {minutes} min, {count} due (threshold {threshold}).',
  'alert.rule.job_stalled':
    'Job {job} has not succeeded for {missed} scheduled runs; last success {lastSuccess} (threshold {threshold}).',
  'alert.rule.orders_stuck':
    '{count} unpaid orders are still pending {hours} h after they expired (the oldest, {oldest}, expired {overdueHours} h ago); their stock is held; last error: {error}; check the WeChat Pay settings and connection (threshold {threshold}).',
  'alert.rule.refunds_failing':
    '{count} refunds failed or were refused by WeChat Pay: handle them in the merchant platform (threshold {threshold}).',
  'alert.rule.transfers_stuck':
    "{count} cashback transfers are stuck (not accepted by WeChat Pay after 3 tries, or not waiting for the member after {hours} h); the members' points are held; last error: {error}; check WeChat Pay (threshold {threshold}).",
  'alert.rule.transfers_failed':
    "{count} cashback transfers failed at WeChat Pay in the last {hours} h for a reason on the merchant's side, most often {reason} ({reasonCount}); the members got their points back but no cash: fix it in the WeChat Pay merchant platform (threshold {threshold}).",
  'alert.rule.reconciliation_mismatches':
    '{count} reconciliation mismatches are open (threshold {threshold}).',
  'command.remind':
    'Check-in reminder: one nudge a day if you have not checked in ("remind 20:30" sets the time)',
  'command.unremind': 'Turn the check-in reminder off',
  'help.arg.time': '[time]',
  'reminder.on':
    'Check-in reminder on ⏰ Every day at {time}, if you have not checked in yet, I will remind you once.\nSend "remind 21:00" to change the time, "unremind" to turn it off.',
  'reminder.window':
    'Reminders are customer-service messages, delivered only within 48 hours of your last message to me; allow the "check-in reminder" subscribe notification to get them at other times too.',
  'reminder.badTime': 'I could not read that time: send a 24-hour time such as "remind 20:30".',
  'reminder.quiet': '{from}–{to} are quiet hours with no reminders: please pick another time.',
  'reminder.off': 'Check-in reminder off. Send "remind" to turn it on again.',
  'reminder.notOn':
    'Your check-in reminder is not on. Send "remind" to be reminded at {time} every day.',
  'reminder.message':
    '⏰ You have not checked in today: send "checkin" for today\'s points and keep your streak going.\nSend "unremind" to stop these reminders.',
  'reminder.subscribe.title': 'Not checked in today',
  'reminder.subscribe.hint': 'Send unremind to stop',
}
