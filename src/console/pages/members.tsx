/**
 * 会员 → 会员查询: one box finds members by openid, nickname, invite code, redemption code or order
 * number (searchMembers), among the account's followers and its mini program's members; each result
 * links to the member's page.
 */
import { memberScope } from '../../admin/reads/account-members.js'
import {
  MEMBER_QUERY_MAX,
  type MemberMatch,
  searchMembers,
} from '../../admin/reads/member-search.js'
import { DataTable } from '../components/data-table.js'
import { Field, Notice } from '../components/form.js'
import { accountOf } from '../context.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'

/**
 * The member page's href (the account kept when it is not the first). A mini-program member's
 * carries `mp=1`: an openid alone names the account's follower first (account-members.ts).
 */
export function memberHref(openid: string, appid?: string, miniProgram?: boolean) {
  const q = new URLSearchParams()
  if (appid) q.set('appid', appid)
  if (miniProgram) q.set('mp', '1')
  const query = q.toString()
  return `/console/members/${encodeURIComponent(openid)}${query ? `?${query}` : ''}`
}

export const membersPage: ConsolePage = {
  section: 'members',
  path: '/members',
  mount(app, deps) {
    app.get('/members', async (c) => {
      const { t } = c.var
      const appid = accountOf(c)
      const keep = c.req.query('appid') === appid ? appid : undefined
      const q = (c.req.query('q') ?? '').trim()
      const tooLong = q.length > MEMBER_QUERY_MAX
      const found: MemberMatch[] =
        q && !tooLong ? await searchMembers(deps.db, memberScope(appid, deps.shop), q) : []
      return renderPage(
        c,
        { title: t('members.title'), section: 'members' },
        <>
          <section class="card" aria-label={t('members.query')}>
            <form method="get" action="/console/members" class="stack">
              {keep && <input type="hidden" name="appid" value={keep} />}
              <Field id="member-q" label={t('members.query')} hint={t('members.queryHint')}>
                <input
                  id="member-q"
                  name="q"
                  type="search"
                  value={q}
                  required
                  maxlength={200}
                  autocomplete="off"
                  aria-describedby="member-q-hint"
                />
              </Field>
              <button type="submit">{t('members.search')}</button>
            </form>
          </section>
          <Notice
            kind="error"
            text={tooLong ? t('members.tooLong', { max: MEMBER_QUERY_MAX }) : undefined}
          />
          {q && !tooLong && (
            <section
              class="card"
              aria-live="polite"
              aria-label={t('members.results', { n: found.length })}
            >
              {found.length === 0 ? (
                <p class="empty" role="status">
                  {t('members.notFound', { q })}
                </p>
              ) : (
                <>
                  <h2>{t('members.results', { n: found.length })}</h2>
                  <DataTable
                    rows={found}
                    empty={t('common.empty')}
                    columns={[
                      {
                        label: t('members.name'),
                        cell: (m) => (
                          <a href={memberHref(m.openid, keep, m.miniProgram)}>
                            {m.displayName ?? t('members.noName')}
                          </a>
                        ),
                      },
                      {
                        label: 'openid',
                        cell: (m) => <code class="wrap">{m.openid}</code>,
                      },
                      {
                        label: t('members.matchedBy'),
                        cell: (m) => `${t(`members.match.${m.matchedBy}`)} ${m.matched}`,
                      },
                      {
                        label: t('member.status'),
                        cell: (m) =>
                          m.miniProgram ? (
                            <span class="badge">{t('members.miniProgram')}</span>
                          ) : m.subscribed ? (
                            t('members.subscribed')
                          ) : (
                            t('members.unsubscribed')
                          ),
                      },
                    ]}
                  />
                </>
              )}
            </section>
          )}
        </>,
        tooLong ? 400 : 200,
      )
    })
  },
}
