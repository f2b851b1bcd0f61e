/**
 * 会员 → 会员详情 (`/members/:openid`): the profile, points and ledger, check-ins, invite tree,
 * orders, sign-ups, segment history and reachability (admin reads); owners and operators grant or
 * deduct points (grantPoints, within an operator's per-day limit) and exclude the member from
 * campaigns or include them again (setMarketingOptOut), and tag them at WeChat (tagMembers; only
 * with the account's API — without it the form says why). WeChat has an untag call the engine does
 * not wrap yet, so tags are removed in the WeChat admin. A member of the account's mini program
 * (account-members.ts; `?mp=1` names one) is marked as such, without the follower-only reach card,
 * campaign setting and tag form; their forms posted anyway are refused. One a 绑定 linked to a
 * follower (what they had moved there) links to the follower's page and offers no action.
 */
import * as v from 'valibot'
import { setMarketingOptOut } from '../../admin/actions/member-actions.js'
import { grantPoints, grantPointsInput } from '../../admin/actions/points-actions.js'
import { tagMembers } from '../../admin/actions/tag-actions.js'
import {
  findScopeMember,
  isMiniProgramMember,
  linkedFollower,
  memberScope,
} from '../../admin/reads/account-members.js'
import { accountTags } from '../../admin/reads/account-tags.js'
import { INVITE_TREE_DEPTH, inviteTree } from '../../admin/reads/invite-tree.js'
import { memberCheckins } from '../../admin/reads/member-checkins.js'
import { memberLedger } from '../../admin/reads/member-ledger.js'
import { memberProfile } from '../../admin/reads/member-profile.js'
import { memberReachability } from '../../admin/reads/member-reachability.js'
import { grantedToday } from '../../admin/reads/operator-grants.js'
import { translator } from '../../bot/i18n.js'
import { memberBadges } from '../../community/badges.js'
import { expiringPoints } from '../../community/points-expiry.js'
import { INT_MAX } from '../../routes/validate.js'
import { WechatApiError, WechatNetworkError } from '../../wechat/api/errors.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import { beforeOf } from '../components/pager.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  ConsoleRefusal,
  requireRole,
} from '../context.js'
import type { MessageKey } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { MemberBadgesCard } from './badges.js'
import {
  CalendarCard,
  HistoryCards,
  InviteCard,
  LedgerCard,
  ProfileCard,
  ReachCard,
} from './member-sections.js'
import { TagForm } from './member-tag-form.js'
import { memberHref } from './members.js'

const LEDGER_PAGE = 20

/** The notices a redirect back may name. */
const DONE: MessageKey[] = [
  'member.grant.done',
  'member.grant.duplicate',
  'member.optOut.done',
  'member.optIn.done',
  'member.optOut.same',
  'memberTag.done',
]

async function load(c: ConsoleContext, deps: ConsoleDeps) {
  const appid = accountOf(c)
  const scope = memberScope(appid, deps.shop)
  const member = await findScopeMember(deps.db, scope, c.req.param('openid') ?? '', {
    miniProgram: c.req.query('mp') === '1',
  })
  if (!member) throw new ConsoleRefusal(404, 'member.unknown')
  const keep = c.req.query('appid') === appid ? appid : undefined
  const miniProgram = isMiniProgramMember(scope, member)
  // a 绑定 moved what they had to a follower: act there
  const linked = miniProgram ? await linkedFollower(deps.db, member) : undefined
  const href = memberHref(member.openid, keep, miniProgram)
  return { appid, member, keep, miniProgram, linked, href }
}

/** `href` (the member page's, with its query) with `sub` appended to its path: a form's action. */
const subPath = (href: string, sub: string) => {
  const [path, query] = href.split('?')
  return `${path}${sub}${query ? `?${query}` : ''}`
}

/** A form error or notice to show above the page, with the values typed. */
interface Outcome {
  error?: MessageKey
  params?: Record<string, string | number>
  delta?: string
  reason?: string
  tagid?: string
}

async function show(c: ConsoleContext, deps: ConsoleDeps, out: Outcome = {}, status?: 400) {
  const { t, fmt, session } = c.var
  const { appid, member, keep, miniProgram, linked, href } = await load(c, deps)
  const before = beforeOf(c)
  const now = deps.clock.now()
  const canAct = session.operator.role !== 'viewer' && !linked
  const tagging = canAct && !miniProgram && deps.wechat?.api(appid) !== undefined
  const [ledger, profile, checkins, tree, reach, granted, known, badges, expiring] =
    await Promise.all([
      memberLedger(deps.db, member, { limit: LEDGER_PAGE + 1, before }),
      memberProfile(deps.db, member),
      memberCheckins(deps.db, member.id, now, deps.timeZone),
      inviteTree(deps.db, appid, member.id),
      // the OA's channels: none for a mini-program member
      miniProgram ? undefined : memberReachability(deps.db, member, now),
      grantedToday(deps.db, session.operator.name, now, deps.timeZone),
      tagging ? accountTags(deps.db, appid) : ('no_api' as const),
      memberBadges(deps.db, member.id),
      expiringPoints(deps.db, member.id, deps.timeZone),
    ])
  const more = ledger.entries.length > LEDGER_PAGE
  ledger.entries = ledger.entries.slice(0, LEDGER_PAGE)
  const limit = session.operator.role === 'operator' ? session.operator.dailyGrantLimit : null
  const asked = c.req.query('done') as MessageKey | undefined
  const done = asked && DONE.includes(asked) ? asked : undefined
  const view = { t, fmt }
  return renderPage(
    c,
    { title: `${t('member.title')} · ${member.display_name ?? member.openid}`, section: 'members' },
    <>
      <p>
        <a href={`/console/members${keep ? `?appid=${keep}` : ''}`}>{t('member.back')}</a>
      </p>
      {miniProgram && (
        <p role="note">
          <span class="badge">{t('member.mp.mark')}</span> {t('member.mp.note')}
        </p>
      )}
      {linked && (
        <p class="notice" role="note">
          {t('member.mp.linked')}{' '}
          <a href={memberHref(linked.openid, linked.appid)}>
            {linked.display_name ?? linked.openid}
          </a>
        </p>
      )}
      <Notice kind="error" text={out.error && t(out.error, out.params)} />
      <Notice
        kind="ok"
        text={
          done &&
          t(done, {
            delta: c.req.query('delta') ?? '',
            balance: c.req.query('balance') ?? '',
            tagid: c.req.query('tagid') ?? '',
          })
        }
      />
      <ProfileCard
        {...view}
        member={member}
        miniProgram={miniProgram}
        tags={profile.tags}
        segment={profile.segment}
        ledger={ledger}
        expiring={expiring}
      />
      {canAct && (
        <section class="card" aria-labelledby="actions">
          <h2 id="actions">{t('member.actions')}</h2>
          <form method="post" action={subPath(href, '/points')} class="stack">
            <CsrfField token={session.csrfToken} />
            <input type="hidden" name="idempotencyKey" value={crypto.randomUUID()} />
            <h3>{t('member.grant')}</h3>
            {limit !== null && (
              <p class="muted">
                {t('member.grant.limit', { granted: fmt.count(granted), limit: fmt.count(limit) })}
              </p>
            )}
            <Field id="grant-delta" label={t('member.grant.delta')}>
              <input
                id="grant-delta"
                name="delta"
                type="number"
                step={1}
                required
                inputmode="numeric"
                value={out.delta}
              />
            </Field>
            <Field id="grant-reason" label={t('member.grant.reason')}>
              <input id="grant-reason" name="reason" required maxlength={200} value={out.reason} />
            </Field>
            <button type="submit">{t('member.grant.submit')}</button>
          </form>
          {!miniProgram && (
            <>
              <form method="post" action={subPath(href, '/opt-out')} class="spaced">
                <CsrfField token={session.csrfToken} />
                <input type="hidden" name="optOut" value={member.marketing_opt_out ? '0' : '1'} />
                <button type="submit" class="secondary">
                  {member.marketing_opt_out ? t('member.include') : t('member.exclude')}
                </button>
              </form>
              <TagForm
                t={t}
                action={subPath(href, '/tags')}
                csrf={session.csrfToken}
                current={profile.tags.map((x) => x.tagid)}
                known={known}
                sandbox={deps.system?.sandbox ?? false}
                typed={out.tagid}
              />
            </>
          )}
        </section>
      )}
      <LedgerCard {...view} c={c} ledger={ledger} path={memberHref(member.openid)} more={more} />
      {reach && <ReachCard {...view} reach={reach} />}
      <CalendarCard {...view} {...checkins} />
      <MemberBadgesCard {...view} badges={badges} />
      <InviteCard {...view} tree={tree} depth={INVITE_TREE_DEPTH} appid={keep} />
      <HistoryCards {...view} profile={profile} />
    </>,
    status,
  )
}

const text = (x: unknown) => (typeof x === 'string' ? x.trim() : '')

/** Redirects back to the member page with a notice. */
function back(
  c: ConsoleContext,
  href: string,
  done: MessageKey,
  params: Record<string, string> = {},
) {
  const q = new URLSearchParams({ done, ...params }).toString()
  return c.redirect(`${href}${href.includes('?') ? '&' : '?'}${q}`, 303)
}

export const memberPage: ConsolePage = {
  section: 'members',
  path: '/members/:openid',
  mount(app, deps) {
    app.get('/members/:openid', (c) => show(c, deps))

    app.post('/members/:openid/points', requireRole('owner', 'operator'), async (c) => {
      const { appid, member, linked, href } = await load(c, deps)
      // points granted here would stay behind, out of the user's reach
      if (linked) return show(c, deps, { error: 'member.mp.linked' }, 400)
      const body = await c.req.parseBody()
      const typed = { delta: text(body.delta), reason: text(body.reason) }
      const delta = /^[+-]?\d{1,7}$/.test(typed.delta) ? Number(typed.delta) : Number.NaN
      const parsed = v.safeParse(grantPointsInput, {
        delta,
        reason: typed.reason,
        ...(text(body.idempotencyKey) ? { idempotencyKey: text(body.idempotencyKey) } : {}),
      })
      if (!parsed.success) {
        const onDelta = parsed.issues.some((i) => v.getDotPath(i) === 'delta')
        return show(
          c,
          deps,
          { ...typed, error: onDelta ? 'member.grant.badDelta' : 'member.grant.badReason' },
          400,
        )
      }
      const actor = actorOf(c)
      const outcome = await grantPoints(
        { ...deps, t: translator(deps.locale) },
        actor,
        { ...parsed.output, appid, member },
        { dailyLimit: true },
      )
      const fmt = c.var.fmt
      switch (outcome.status) {
        case 'over_limit':
          return show(
            c,
            deps,
            {
              ...typed,
              error: 'member.grant.overLimit',
              params: { granted: fmt.count(outcome.granted), limit: fmt.count(outcome.limit) },
            },
            400,
          )
        case 'limit':
          return show(c, deps, { ...typed, error: 'member.grant.overflow' }, 400)
        case 'insufficient':
          return show(
            c,
            deps,
            {
              ...typed,
              error: 'member.grant.insufficient',
              params: { balance: fmt.count(outcome.balance) },
            },
            400,
          )
        case 'duplicate':
          return back(c, href, 'member.grant.duplicate')
        default:
          return back(c, href, 'member.grant.done', {
            delta: delta > 0 ? `+${delta}` : String(delta),
            balance: String(outcome.balance),
          })
      }
    })

    app.post('/members/:openid/tags', requireRole('owner', 'operator'), async (c) => {
      const { appid, member, miniProgram, href } = await load(c, deps)
      if (miniProgram) return show(c, deps, { error: 'member.mp.followersOnly' }, 400)
      const typed = text((await c.req.parseBody()).tagid)
      const tagid = /^\d{1,10}$/.test(typed) ? Number(typed) : 0
      if (tagid < 1 || tagid > INT_MAX)
        return show(c, deps, { tagid: typed, error: 'memberTag.badId' }, 400)
      const wechat = deps.wechat
      const actor = actorOf(c)
      try {
        const r = wechat
          ? await tagMembers({ ...deps, wechat }, actor, { appid, tagid, openids: [member.openid] })
          : ({ status: 'no_api' } as const)
        if (r.status !== 'tagged') return show(c, deps, { error: 'memberTag.noApi' }, 400)
        return back(c, href, 'memberTag.done', { tagid: String(tagid) })
      } catch (error) {
        const out = { tagid: typed }
        if (error instanceof WechatApiError) {
          const reason = `${error.errcode} ${error.errmsg}`
          return show(c, deps, { ...out, error: 'memberTag.refused', params: { reason } }, 400)
        }
        if (error instanceof WechatNetworkError)
          return show(c, deps, { ...out, error: 'memberTag.failed' }, 400)
        throw error
      }
    })

    app.post('/members/:openid/opt-out', requireRole('owner', 'operator'), async (c) => {
      const { appid, member, miniProgram, href } = await load(c, deps)
      if (miniProgram) return show(c, deps, { error: 'member.mp.followersOnly' }, 400)
      const value = text((await c.req.parseBody()).optOut)
      if (value !== '0' && value !== '1') throw new ConsoleRefusal(400, 'member.optOut.same')
      const actor = actorOf(c)
      const { changed } = await setMarketingOptOut(deps, actor, {
        appid,
        member,
        optOut: value === '1',
      })
      return back(
        c,
        href,
        changed
          ? value === '1'
            ? 'member.optOut.done'
            : 'member.optIn.done'
          : 'member.optOut.same',
      )
    })
  },
}
