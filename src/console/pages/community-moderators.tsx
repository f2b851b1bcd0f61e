/**
 * 社群 → 管理员: the moderators the bot checks (every source), and for an owner the add form and a
 * remove button on the ones added here — through `addModerator` / `removeModerator`, the admin
 * API's actions, audited with the owner's name. Bad input is refused on the page, nothing changed.
 */
import * as v from 'valibot'
import {
  addModerator,
  addModeratorInput,
  moderatorKey,
  removeModerator,
} from '../../admin/actions/moderator-actions.js'
import {
  COMMUNITY_PAGE,
  listModerators,
  type ModeratorRow,
} from '../../admin/reads/community-reads.js'
import { DataTable } from '../components/data-table.js'
import { CsrfField, Field, Notice } from '../components/form.js'
import { keepAccount, OffsetPager, offsetOf } from '../components/pager.js'
import { SelectField } from '../components/select.js'
import {
  accountOf,
  actorOf,
  type ConsoleContext,
  type ConsoleDeps,
  requireRole,
} from '../context.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { channelName } from './community.js'
import { CommunityTabs } from './community-tabs.js'

const PATH = '/community/moderators'
const SOURCES = ['config', 'wecom', 'console']

const who = (m: Pick<ModeratorRow, 'channel' | 'externalId' | 'scope'>) =>
  `${m.channel}:${m.externalId}@${m.scope}`
const sourceName = (t: Translate, source: string) =>
  SOURCES.includes(source) ? t(`community.source.${source}` as MessageKey) : source

/** Form values as posted (strings; an empty scope is `*`). */
type Values = { channel: string; externalId: string; scope: string; role: string }
const BLANK: Values = { channel: 'oa', externalId: '', scope: '', role: 'moderator' }

async function show(
  c: ConsoleContext,
  deps: ConsoleDeps,
  o: { values?: Values; error?: string; status?: 400 } = {},
) {
  const { t, session } = c.var
  const owner = session.operator.role === 'owner'
  const offset = offsetOf(c, 'offset')
  const list = await listModerators(deps.db, accountOf(c), { offset })
  const values = o.values ?? BLANK
  const added = c.req.query('added')
  const removed = c.req.query('removed')
  return renderPage(
    c,
    { title: t('community.moderators'), section: 'community' },
    <>
      <CommunityTabs t={t} current="/console/community/moderators" />
      <Notice kind="error" text={o.error && t('community.error.form', { reason: o.error })} />
      <Notice kind="ok" text={added ? t('community.added', { who: added }) : undefined} />
      <Notice kind="ok" text={removed ? t('community.removed', { who: removed }) : undefined} />
      <section class="card" aria-labelledby="moderators">
        <h2 id="moderators">{t('community.moderators')}</h2>
        <p class="muted">{t('community.moderatorsHint')}</p>
        {!owner && <p class="muted">{t('community.ownerOnly')}</p>}
        <DataTable
          rows={list.rows}
          empty={t('common.empty')}
          columns={[
            { label: t('community.channel'), cell: (m) => channelName(t, m.channel) },
            {
              label: t('community.externalId'),
              cell: (m) => <code class="wrap">{m.externalId}</code>,
            },
            {
              label: t('community.scope'),
              cell: (m) =>
                m.scope === '*' ? t('community.scope.all') : <code class="wrap">{m.scope}</code>,
            },
            { label: t('community.role'), cell: (m) => t(`community.role.${m.role}`) },
            { label: t('community.source'), cell: (m) => sourceName(t, m.source) },
            ...(owner
              ? [
                  {
                    label: '',
                    cell: (m: ModeratorRow) =>
                      m.source !== 'console' ? null : (
                        <form method="post" action={keepAccount(c, `/console${PATH}/remove`)}>
                          <CsrfField token={session.csrfToken} />
                          <input type="hidden" name="channel" value={m.channel} />
                          <input type="hidden" name="externalId" value={m.externalId} />
                          <input type="hidden" name="scope" value={m.scope} />
                          <button
                            type="submit"
                            class="secondary"
                            aria-label={`${t('community.remove')} ${who(m)}`}
                          >
                            {t('community.remove')}
                          </button>
                        </form>
                      ),
                  },
                ]
              : []),
          ]}
        />
        <OffsetPager
          c={c}
          path={`/console${PATH}`}
          param="offset"
          offset={offset}
          size={COMMUNITY_PAGE}
          more={list.more}
          label={t('community.moderators')}
        />
      </section>
      {owner && (
        <section class="card" aria-labelledby="add-moderator">
          <h2 id="add-moderator">{t('community.add')}</h2>
          <form method="post" action={keepAccount(c, `/console${PATH}`)} class="stack">
            <CsrfField token={session.csrfToken} />
            <SelectField
              id="mod-channel"
              name="channel"
              label={t('community.channel')}
              value={values.channel}
              options={[
                ['oa', t('community.channelOa')],
                ['wecom_aibot', t('community.channelWecom')],
              ]}
            />
            <Field
              id="mod-id"
              label={t('community.externalId')}
              hint={t('community.externalIdHint')}
            >
              <input
                id="mod-id"
                name="externalId"
                value={values.externalId}
                required
                maxlength={128}
                autocomplete="off"
                aria-describedby="mod-id-hint"
              />
            </Field>
            <Field id="mod-scope" label={t('community.scope')} hint={t('community.scopeHint')}>
              <input
                id="mod-scope"
                name="scope"
                value={values.scope}
                maxlength={128}
                autocomplete="off"
                aria-describedby="mod-scope-hint"
              />
            </Field>
            <SelectField
              id="mod-role"
              name="role"
              label={t('community.role')}
              value={values.role}
              options={[
                ['moderator', t('community.role.moderator')],
                ['admin', t('community.role.admin')],
              ]}
            />
            <button type="submit">{t('community.add')}</button>
          </form>
        </section>
      )}
    </>,
    o.status,
  )
}

const str = (x: unknown) => (typeof x === 'string' ? x.trim() : '')

/** The form's fields, as posted. */
async function readForm(c: ConsoleContext): Promise<Values> {
  const b = await c.req.parseBody()
  return {
    channel: str(b.channel),
    externalId: str(b.externalId),
    scope: str(b.scope),
    role: str(b.role),
  }
}

/** The first issue as the field's message. */
function issueText(t: Translate, issues: [v.BaseIssue<unknown>, ...v.BaseIssue<unknown>[]]) {
  const field = String(issues[0].path?.[0]?.key ?? 'channel')
  const known = ['channel', 'externalId', 'scope', 'role']
  return t(`community.error.${known.includes(field) ? field : 'channel'}` as MessageKey)
}

export const communityModeratorsPage: ConsolePage = {
  section: 'community',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => show(c, deps))

    app.post(PATH, requireRole('owner'), async (c) => {
      const { t } = c.var
      const values = await readForm(c)
      const parsed = v.safeParse(addModeratorInput, { ...values, scope: values.scope || '*' })
      if (!parsed.success)
        return show(c, deps, { values, error: issueText(t, parsed.issues), status: 400 })
      const appid = accountOf(c)
      const done = await addModerator(deps, actorOf(c), { ...parsed.output, appid })
      if (done.status !== 'added') {
        const error =
          done.status === 'exists'
            ? t('community.error.exists')
            : t('community.error.unknownMember', { id: parsed.output.externalId })
        return show(c, deps, { values, error, status: 400 })
      }
      return c.redirect(keepAccount(c, `/console${PATH}`, { added: who(done.moderator) }), 303)
    })

    app.post(`${PATH}/remove`, requireRole('owner'), async (c) => {
      const { t } = c.var
      const values = await readForm(c)
      const parsed = v.safeParse(moderatorKey, {
        channel: values.channel,
        externalId: values.externalId,
        scope: values.scope || '*',
      })
      if (!parsed.success) return show(c, deps, { error: issueText(t, parsed.issues), status: 400 })
      const appid = accountOf(c)
      const done = await removeModerator(deps, actorOf(c), { ...parsed.output, appid })
      if (done.status === 'not_found')
        return show(c, deps, { error: t('community.error.notFound'), status: 400 })
      if (done.status === 'managed')
        return show(c, deps, {
          error: t('community.error.managed', { source: sourceName(t, done.source) }),
          status: 400,
        })
      return c.redirect(keepAccount(c, `/console${PATH}`, { removed: who(parsed.output) }), 303)
    })
  },
}
