/**
 * 社群 → 审计日志: the account's audit entries (and the deployment's), newest first, 50 a page
 * (keyset on id), filtered by actor, action (the distinct actions), target prefix and a range of
 * community days; 导出 CSV exports the filtered view (the newest 10 000 at most). The same reads
 * as `GET /admin/api/accounts/:appid/audit-log`. A bad filter is refused on the page (400).
 */
import * as v from 'valibot'
import {
  AUDIT_EXPORT_LIMIT,
  type AuditFilterInput,
  auditActions,
  auditFilterInput,
  auditLogExport,
  auditLogPage,
  auditRowsCsv,
} from '../../admin/reads/audit-log.js'
import { csvResponse } from '../../routes/csv.js'
import { auditActionName } from '../code-labels.js'
import { DataTable } from '../components/data-table.js'
import { Field, Notice } from '../components/form.js'
import { keepAccount, listHref, Pager } from '../components/pager.js'
import { Select } from '../components/select.js'
import { accountOf, type ConsoleContext, type ConsoleDeps } from '../context.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { CommunityTabs } from './community-tabs.js'

const PATH = '/community/audit'
const FIELDS = ['actor', 'action', 'target', 'from', 'to'] as const

/** The filter of the request, or undefined when it does not validate. */
function filterOf(c: ConsoleContext): AuditFilterInput | undefined {
  const parsed = v.safeParse(auditFilterInput, c.req.query())
  return parsed.success ? parsed.output : undefined
}

async function show(c: ConsoleContext, deps: ConsoleDeps) {
  const { t, fmt } = c.var
  const appid = accountOf(c)
  const filter = filterOf(c)
  const values = Object.fromEntries(FIELDS.map((f) => [f, c.req.query(f)?.trim() ?? '']))
  const [actions, page] = await Promise.all([
    auditActions(deps.db, appid),
    filter ? auditLogPage(deps.db, appid, filter, deps.timeZone) : undefined,
  ])
  const appidQuery = c.req.query('appid')
  /** An action in words with its code, which the filter and the CSV use. */
  const option = (code: string) => {
    const label = auditActionName(t, code)
    return label === code ? code : t('community.action.option', { label, code })
  }
  const exportHref = listHref(c, { path: `/console${PATH}.csv`, keep: FIELDS })
  return renderPage(
    c,
    { title: t('community.audit'), section: 'community' },
    <>
      <CommunityTabs t={t} current="/console/community/audit" />
      <Notice kind="error" text={filter ? undefined : t('community.error.filter')} />
      <section class="card" aria-labelledby="audit-filter">
        <h2 id="audit-filter">{t('community.filters')}</h2>
        <p class="muted">{t('community.auditHint', { tz: deps.timeZone })}</p>
        <form method="get" action={`/console${PATH}`} class="filters">
          {appidQuery && <input type="hidden" name="appid" value={appidQuery} />}
          <Field id="audit-actor" label={t('community.filter.actor')}>
            <input id="audit-actor" name="actor" value={values.actor} maxlength={200} />
          </Field>
          <Field id="audit-action" label={t('community.filter.action')}>
            <Select
              id="audit-action"
              name="action"
              value={values.action ?? ''}
              options={[
                ['', t('community.filter.allActions')],
                ...actions.map((a): [string, string] => [a, option(a)]),
                // A filter on an action no entry has (yet) stays selected.
                ...(values.action && !actions.includes(values.action)
                  ? [[values.action, option(values.action)] as [string, string]]
                  : []),
              ]}
            />
          </Field>
          <Field id="audit-target" label={t('community.filter.target')}>
            <input id="audit-target" name="target" value={values.target} maxlength={200} />
          </Field>
          <Field id="audit-from" label={t('community.filter.from')}>
            <input id="audit-from" name="from" type="date" value={values.from} />
          </Field>
          <Field id="audit-to" label={t('community.filter.to')}>
            <input id="audit-to" name="to" type="date" value={values.to} />
          </Field>
          <button type="submit">{t('community.filter.apply')}</button>
          <a href={keepAccount(c, `/console${PATH}`)}>{t('community.filter.reset')}</a>
        </form>
      </section>
      {page && (
        <section class="card" aria-labelledby="audit-log">
          <h2 id="audit-log">{t('community.audit')}</h2>
          <p>
            <a href={exportHref} download>
              {t('community.export', { n: fmt.count(AUDIT_EXPORT_LIMIT) })}
            </a>
          </p>
          <DataTable
            rows={page.rows}
            empty={t('common.empty')}
            columns={[
              { label: t('community.time'), cell: (r) => fmt.dateTime(r.createdAt) },
              { label: t('community.actor'), cell: (r) => <span class="wrap">{r.actor}</span> },
              {
                label: t('community.action'),
                cell: (r) => (
                  <>
                    {auditActionName(t, r.action)} <code class="muted">{r.action}</code>
                  </>
                ),
              },
              { label: t('community.target'), cell: (r) => <span class="wrap">{r.target}</span> },
              {
                label: t('community.details'),
                cell: (r) => (
                  <span class="wrap">
                    {r.details.length > 200 ? `${r.details.slice(0, 200)}…` : r.details}
                  </span>
                ),
              },
              { label: t('community.address'), cell: (r) => r.clientAddress ?? '' },
            ]}
          />
          <Pager
            c={c}
            path={`/console${PATH}`}
            keep={FIELDS}
            label={t('community.audit')}
            older={page.nextBefore ?? undefined}
          />
        </section>
      )}
    </>,
    filter ? 200 : 400,
  )
}

export const communityAuditPage: ConsolePage = {
  section: 'community',
  path: PATH,
  mount(app, deps) {
    app.get(PATH, (c) => show(c, deps))

    app.get(`${PATH}.csv`, async (c) => {
      const filter = filterOf(c)
      if (!filter) return show(c, deps)
      const { before: _, ...rest } = filter
      const rows = await auditLogExport(deps.db, accountOf(c), rest, deps.timeZone)
      return csvResponse(c, 'audit-log.csv', ...auditRowsCsv(rows, deps.timeZone))
    })
  },
}
