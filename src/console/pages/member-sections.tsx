/**
 * The member page's cards: profile, points and ledger, check-in calendar, invite tree, orders,
 * sign-ups, segment history and reachability. Pure rendering of what the admin reads return.
 */

import { INVITE_LEVEL_SHOWN, type inviteTree } from '../../admin/reads/invite-tree.js'
import type { CalendarDay } from '../../admin/reads/member-checkins.js'
import type { memberLedger } from '../../admin/reads/member-ledger.js'
import type { memberProfile } from '../../admin/reads/member-profile.js'
import type { MemberReachability } from '../../admin/reads/member-reachability.js'
import { MESSAGE_WINDOW } from '../../community/cs-window.js'
import type { Member } from '../../db/schema.js'
import { ledgerKindName, levelName, signupStatusName } from '../code-labels.js'
import { DataTable } from '../components/data-table.js'
import { Pager } from '../components/pager.js'
import type { ConsoleContext } from '../context.js'
import type { Format } from '../format.js'
import type { MessageKey, Translate } from '../i18n.js'
import { memberHref } from './members.js'

type View = { t: Translate; fmt: Format }
type Ledger = Awaited<ReturnType<typeof memberLedger>>
type Profile = Awaited<ReturnType<typeof memberProfile>>
type Tree = Awaited<ReturnType<typeof inviteTree>>

const segmentName = (t: Translate, s: string | null) =>
  t((s ? `member.seg.${s}` : 'member.seg.none') as MessageKey)

/** A definition list of label → value pairs. */
function Facts(p: { rows: [string, unknown][] }) {
  return (
    <dl class="facts">
      {p.rows.map(([label, value]) => (
        <div>
          <dt class="muted">{label}</dt>
          <dd class="wrap">{value}</dd>
        </div>
      ))}
    </dl>
  )
}

/** Who the member is: openid, nickname, subscription, segment, tags, opt-out, level and points. */
export function ProfileCard(
  p: View & {
    member: Member
    tags: Profile['tags']
    /** The current segment and since when; undefined before the first recompute. */
    segment: Profile['segment']
    ledger: Ledger
    /** The next points to expire (src/community/points-expiry.ts), null when none will. */
    expiring: { points: number; lastDay: string } | null
    /** A member of the account's mini program (account-members.ts): no follow to show. */
    miniProgram?: boolean
  },
) {
  const { t, fmt, member: m } = p
  return (
    <section class="card" aria-labelledby="profile">
      <h2 id="profile">{t('member.profile')}</h2>
      <Facts
        rows={[
          ['openid', <code>{m.openid}</code>],
          [t('members.name'), m.display_name ?? t('members.noName')],
          [
            t('member.status'),
            p.miniProgram
              ? t('member.mp.mark')
              : m.subscribed
                ? t('members.subscribed')
                : t('members.unsubscribed'),
          ],
          [t('member.since'), m.subscribed_at ? fmt.dateTime(m.subscribed_at) : '—'],
          [t('member.lastActive'), m.last_active_at ? fmt.dateTime(m.last_active_at) : '—'],
          [
            t('member.segment'),
            `${segmentName(t, p.segment?.segment ?? null)}${p.segment ? ` · ${fmt.dateTime(p.segment.since)}` : ''}`,
          ],
          [
            t('member.tags'),
            p.tags.length ? p.tags.map((x) => x.tagid).join(', ') : t('member.noTags'),
          ],
          [
            t('member.optOut'),
            p.miniProgram ? '—' : m.marketing_opt_out ? t('member.optedOut') : t('member.optedIn'),
          ],
          [t('member.level'), levelName(t, p.ledger.level)],
          [t('member.balance'), <strong>{fmt.count(p.ledger.balance)}</strong>],
          [t('member.frozen'), fmt.count(p.ledger.frozen)],
          [
            t('member.expiring'),
            p.expiring
              ? t('member.expiringValue', {
                  points: fmt.count(p.expiring.points),
                  date: p.expiring.lastDay,
                })
              : '—',
          ],
          [t('member.lifetime'), fmt.count(p.ledger.lifetime)],
        ]}
      />
    </section>
  )
}

/** The ledger page, newest first, with links to older entries and back to the newest. */
export function LedgerCard(
  p: View & { c: ConsoleContext; ledger: Ledger; path: string; more: boolean },
) {
  const { t, fmt, ledger } = p
  return (
    <section class="card" aria-labelledby="ledger">
      <h2 id="ledger">{t('member.ledger')}</h2>
      <DataTable
        rows={ledger.entries}
        empty={t('common.empty')}
        columns={[
          { label: t('member.ledger.time'), cell: (e) => fmt.dateTime(e.created_at) },
          {
            label: t('member.ledger.delta'),
            num: true,
            cell: (e) => (e.delta > 0 ? `+${fmt.count(e.delta)}` : fmt.count(e.delta)),
          },
          { label: t('member.ledger.rule'), cell: (e) => ledgerKindName(t, e.rule) },
          {
            label: t('member.ledger.reason'),
            cell: (e) => <span class="wrap">{e.reference}</span>,
          },
          { label: t('member.ledger.after'), num: true, cell: (e) => fmt.count(e.balance_after) },
          { label: t('member.ledger.state'), cell: (e) => (e.state === 'frozen' ? '❄' : '') },
          {
            label: t('member.ledger.expiry'),
            cell: (e) =>
              [
                e.lot_expires_at &&
                  t('member.ledger.expiresAt', { at: fmt.dateTime(e.lot_expires_at) }),
                e.lot_expired
                  ? t('member.ledger.expired', { points: fmt.count(e.lot_expired) })
                  : undefined,
              ]
                .filter(Boolean)
                .join(' · '),
          },
        ]}
      />
      <Pager
        c={p.c}
        path={p.path}
        keep={['mp']}
        anchor="ledger"
        label={t('member.ledger')}
        older={p.more ? ledger.entries.at(-1)?.id : undefined}
      />
    </section>
  )
}

/** Six weeks of check-ins, Monday first, with the streaks; made-up days (补签) marked. */
export function CalendarCard(
  p: View & { weeks: CalendarDay[][]; current: number; best: number; total: number },
) {
  const { t } = p
  return (
    <section class="card" aria-labelledby="checkins">
      <h2 id="checkins">{t('member.checkins')}</h2>
      <p>{t('member.streak', { current: p.current, best: p.best, total: p.total })}</p>
      <ol class="calendar">
        {t('member.weekdays')
          .split(',')
          .map((d) => (
            <li class="muted" aria-hidden="true">
              {d}
            </li>
          ))}
        {p.weeks.flat().map((d) => {
          const label = d.checkedIn
            ? t(d.madeUp ? 'member.madeUp' : 'member.checkedIn', { day: d.day, streak: d.streak })
            : t('member.notCheckedIn', { day: d.day })
          return (
            <li
              class={d.future ? 'future' : d.checkedIn ? (d.madeUp ? 'on made-up' : 'on') : 'off'}
              title={label}
              aria-label={label}
            >
              {Number(d.day.slice(8))}
            </li>
          )
        })}
      </ol>
    </section>
  )
}

const inviteStatus = (t: Translate, s: 'pending' | 'qualified') =>
  t(s === 'qualified' ? 'member.invite.qualified' : 'member.invite.pending')

/** Inviters up the tree and invitees down it, each level counted. */
export function InviteCard(p: View & { tree: Tree; depth: number; appid?: string }) {
  const { t, fmt, tree } = p
  const who = (m: { openid: string; displayName: string | null }) => (
    <a class="wrap" href={memberHref(m.openid, p.appid)}>
      {m.displayName ?? m.openid}
    </a>
  )
  return (
    <section class="card" aria-labelledby="invites">
      <h2 id="invites">{t('member.invites')}</h2>
      <h3>{t('member.invitedBy', { depth: p.depth })}</h3>
      {tree.up.length === 0 ? (
        <p class="muted">{t('member.noInviter')}</p>
      ) : (
        <ol class="list">
          {tree.up.map((m) => (
            <li>
              {who(m)} <span class="muted">{fmt.dateTime(m.invitedAt)}</span>
            </li>
          ))}
        </ol>
      )}
      <h3>{t('member.invitees', { depth: p.depth })}</h3>
      {tree.down.length === 0 ? (
        <p class="muted">{t('member.noInvitees')}</p>
      ) : (
        tree.down.map((level) => (
          <details open={level.depth === 1}>
            <summary>
              {t('member.level.n', { depth: level.depth, count: fmt.count(level.count) })}
              {level.count > INVITE_LEVEL_SHOWN && (
                <span class="muted">
                  {' '}
                  · {t('member.level.more', { shown: INVITE_LEVEL_SHOWN })}
                </span>
              )}
            </summary>
            <ul class="list">
              {level.members.map((m) => (
                <li>
                  {who(m)} <span class="badge">{inviteStatus(t, m.status)}</span>
                </li>
              ))}
            </ul>
          </details>
        ))
      )}
    </section>
  )
}

/** Orders, activity sign-ups and segment changes. */
export function HistoryCards(p: View & { profile: Profile }) {
  const { t, fmt, profile } = p
  return (
    <>
      <section class="card" aria-labelledby="orders">
        <h2 id="orders">{t('member.orders')}</h2>
        <DataTable
          rows={profile.orders}
          empty={t('common.empty')}
          columns={[
            {
              label: t('member.order.no'),
              cell: (o) => <code class="wrap">{o.out_trade_no}</code>,
            },
            { label: t('member.order.item'), cell: (o) => o.description },
            { label: t('member.order.amount'), num: true, cell: (o) => fmt.fen(o.amount_fen) },
            { label: t('member.order.status'), cell: (o) => t(`shop.orderStatus.${o.status}`) },
            { label: t('member.order.time'), cell: (o) => fmt.dateTime(o.created_at) },
          ]}
        />
      </section>
      <section class="card" aria-labelledby="signups">
        <h2 id="signups">{t('member.signups')}</h2>
        <DataTable
          rows={profile.signups}
          empty={t('common.empty')}
          columns={[
            { label: t('member.signup.activity'), cell: (s) => s.name },
            { label: t('member.signup.period'), cell: (s) => s.period },
            { label: t('member.signup.status'), cell: (s) => signupStatusName(t, s.status) },
          ]}
        />
      </section>
      <section class="card" aria-labelledby="segments">
        <h2 id="segments">{t('member.segments')}</h2>
        <DataTable
          rows={profile.segments}
          empty={t('common.empty')}
          columns={[
            { label: t('member.segment.from'), cell: (s) => segmentName(t, s.from_segment) },
            { label: t('member.segment.to'), cell: (s) => segmentName(t, s.to_segment) },
            { label: t('member.segment.at'), cell: (s) => fmt.dateTime(s.at) },
          ]}
        />
      </section>
    </>
  )
}

/** Why the member can or cannot be reached now, channel by channel. */
export function ReachCard(p: View & { reach: MemberReachability }) {
  const { t, fmt, reach } = p
  // `custom` answers for notices: the 48-hour window's quota
  const why = (u: { errcode: number } | null) =>
    u === null
      ? t('member.reach.open')
      : t(`member.reach.why.${u.errcode}` as MessageKey, { quota: MESSAGE_WINDOW.quota })
  return (
    <section class="card" aria-labelledby="reach">
      <h2 id="reach">{t('member.reach')}</h2>
      <Facts
        rows={[
          [t('member.reach.template'), why(reach.template)],
          [t('member.reach.custom'), why(reach.custom)],
          [
            t('member.reach.windowLabel'),
            reach.windowClosesAt
              ? t(
                  reach.windowKind === 'event' ? 'member.reach.eventWindow' : 'member.reach.window',
                  {
                    until: fmt.dateTime(reach.windowClosesAt),
                    sent: reach.windowSent,
                    quota: reach.windowQuota,
                  },
                )
              : t('member.reach.noWindow'),
          ],
          [t('member.optOut'), reach.optedOut ? t('member.reach.optedOut') : t('member.optedIn')],
        ]}
      />
    </section>
  )
}
