/**
 * 系统 → 运行状态: what /healthz reports (the same cached `readOpsStatus` /metrics reads), the
 * configured accounts (never a secret: only whether one is set), the outbox by kind, lane and
 * status, each job's newest run and time since success, the open alerts and the alert settings
 * (owners and operators change them on alert-settings-form.tsx). 运营账号 is the section's other page.
 */

import { latestJobRuns } from '../../admin/reads/job-runs.js'
import { type OutboxCell, outboxSummary } from '../../admin/reads/outbox-summary.js'
import { ALERT_RULE_KEYS, ALERT_RULES, readAlertSettings } from '../../analytics/alert-rules.js'
import { listAlerts } from '../../analytics/alerts.js'
import { readOpsStatus } from '../../community/ops-status.js'
import { jobName, refundStatusName } from '../code-labels.js'
import { type Column, DataTable } from '../components/data-table.js'
import { Notice } from '../components/form.js'
import { OpenAlerts } from '../components/open-alerts.js'
import { accountOf, type ConsoleDeps, type SystemInfo } from '../context.js'
import type { MessageKey, Translate } from '../i18n.js'
import type { ConsolePage } from '../page.js'
import { renderPage } from '../render.js'
import { alertFormAction, mountAlertSettings } from './alert-settings-form.js'
import { duration, SystemTabs } from './system-tabs.js'

const PATH = '/system'

/** A threshold in its rule's unit. */
function threshold(t: Translate, percent: (x: number) => string, unit: string, n: number) {
  if (unit === 'ratio') return percent(n)
  if (unit === 'seconds') return duration(t, n)
  if (unit === 'periods') return t('system.periods', { n })
  return String(n)
}

export const systemPage: ConsolePage = {
  section: 'system',
  path: PATH,
  mount(app, deps: ConsoleDeps) {
    mountAlertSettings(app, deps)
    const sys: SystemInfo = deps.system ?? {
      status: () => readOpsStatus(deps.db, deps.clock, []),
      accounts: [],
      jobs: [],
      sandbox: false,
    }
    app.get(PATH, async (c) => {
      const { t, fmt } = c.var
      const now = deps.clock.now()
      const appid = deps.appids.length > 0 ? accountOf(c) : undefined
      const [status, outbox, runs, alerts, settings] = await Promise.all([
        sys.status(),
        outboxSummary(deps.db, now),
        latestJobRuns(
          deps.db,
          sys.jobs.map((j) => j.name),
        ),
        appid ? listAlerts(deps.db, appid, { limit: 20 }) : undefined,
        appid ? readAlertSettings(deps.db, appid) : undefined,
      ])
      const ago = (s: number | null) =>
        s === null ? t('system.never') : t('system.ago', { age: duration(t, s) })
      const state = (ok: boolean) => (ok ? t('system.ok') : t('system.down'))
      /** `label：value` with the language's punctuation. */
      const fact = (label: MessageKey, value: string) =>
        t('system.fact', { label: t(label), value })
      const cells: Column<OutboxCell>[] = [
        {
          label: t('system.lane'),
          cell: (r) => t(`system.lane.${r.lane}` as MessageKey),
        },
        {
          label: t('system.outboxStatus'),
          cell: (r) => t(`system.outboxStatus.${r.status}` as MessageKey),
        },
        { label: t('system.count'), num: true, cell: (r) => fmt.count(r.count) },
        {
          label: t('system.oldest'),
          cell: (r) => ago(r.oldestSeconds),
        },
      ]
      const refunds = Object.entries(status.refunds)
      return renderPage(
        c,
        { title: t('system.title'), section: 'system' },
        <>
          <SystemTabs t={t} current="/console/system" />
          <div class="grid">
            <section class="card" aria-labelledby="health">
              <h2 id="health">{t('system.health')}</h2>
              <ul class="list">
                <li>
                  <strong>{state(status.ok)}</strong>
                  {sys.sandbox && <span class="badge"> {t('system.sandbox')}</span>}
                </li>
                <li>
                  {fact(
                    'system.db',
                    t('system.dbMs', { state: state(status.db.ok), ms: status.db.ms }),
                  )}
                </li>
                <li>
                  {fact(
                    'system.backlog',
                    t('system.backlogValue', {
                      count: fmt.count(status.outbox.backlog),
                      wait: duration(t, status.outbox.oldestDueSeconds),
                    }),
                  )}
                </li>
                <li>{fact('system.jobLag', ago(status.jobs.lagSeconds))}</li>
                <li>
                  {fact(
                    'system.refunds',
                    refunds.length === 0
                      ? t('system.none')
                      : refunds
                          .map(([code, v]) =>
                            t('system.refundCount', {
                              status: refundStatusName(t, code),
                              count: fmt.count(v.count),
                            }),
                          )
                          .join(t('system.listSep')),
                  )}
                </li>
                <li>
                  {fact(
                    'system.paused',
                    status.outbox.paused.length === 0
                      ? t('system.none')
                      : status.outbox.paused
                          .map((p) =>
                            t('system.pausedUntil', {
                              appid: p.appid,
                              api: p.api,
                              until: fmt.dateTime(new Date(p.until)),
                            }),
                          )
                          .join(t('system.itemSep')),
                  )}
                </li>
              </ul>
            </section>
            <section class="card" aria-labelledby="accounts">
              <h2 id="accounts">{t('system.accounts')}</h2>
              <DataTable
                rows={sys.accounts}
                empty={t('system.accountsNone')}
                columns={[
                  { label: t('system.appid'), cell: (a) => a.appid },
                  { label: t('system.mode'), cell: (a) => t(`system.mode.${a.mode}`) },
                  {
                    label: t('system.secret'),
                    cell: (a) => (a.secret ? t('system.configured') : t('system.notConfigured')),
                  },
                  {
                    label: t('system.previousKey'),
                    cell: (a) =>
                      a.previousKey ? t('system.configured') : t('system.notConfigured'),
                  },
                ]}
              />
            </section>
          </div>
          <section class="card spaced" aria-labelledby="outbox">
            <h2 id="outbox">{t('system.outbox')}</h2>
            <h3>{t('system.outboxDue')}</h3>
            <DataTable
              rows={Object.entries(status.outbox.byKind)}
              empty={t('system.none')}
              columns={[
                {
                  label: t('system.kind'),
                  cell: ([kind]) => t(`system.kind.${kind}` as MessageKey),
                },
                { label: t('system.count'), num: true, cell: ([, l]) => fmt.count(l.backlog) },
                { label: t('system.oldestDue'), cell: ([, l]) => duration(t, l.oldestDueSeconds) },
              ]}
            />
            <h3>{t('system.outboxWaiting')}</h3>
            <DataTable rows={outbox.waiting} empty={t('system.none')} columns={cells} />
            <h3>{t('system.outboxLastDay')}</h3>
            <DataTable rows={outbox.lastDay} empty={t('system.none')} columns={cells} />
          </section>
          <section class="card" aria-labelledby="jobs">
            <h2 id="jobs">{t('system.jobs')}</h2>
            <DataTable
              rows={runs.map((r) => ({ ...r, cron: sys.jobs.find((j) => j.name === r.job)!.cron }))}
              empty={t('common.empty')}
              columns={[
                {
                  label: t('system.job'),
                  cell: (r) => <span title={r.job}>{jobName(t, r.job)}</span>,
                },
                { label: t('system.cron'), cell: (r) => <code>{r.cron}</code> },
                {
                  label: t('system.lastRun'),
                  cell: (r) => (r.run ? fmt.dateTime(new Date(r.run.slot)) : t('system.never')),
                },
                {
                  label: t('system.lastStatus'),
                  cell: (r) =>
                    r.run ? t(`system.runStatus.${r.run.status}`) : t('activities.none'),
                },
                {
                  label: t('system.sinceSuccess'),
                  cell: (r) => ago(status.jobs.sinceSuccess[r.job] ?? null),
                },
                {
                  label: t('system.error'),
                  cell: (r) =>
                    r.run?.error ? (
                      <span style="overflow-wrap:anywhere">{r.run.error.slice(0, 160)}</span>
                    ) : (
                      ''
                    ),
                },
              ]}
            />
          </section>
          <OpenAlerts alerts={alerts?.open ?? []} t={t} fmt={fmt} />
          {settings && (
            <section class="card" aria-labelledby="alert-settings">
              <h2 id="alert-settings">{t('system.alertSettings')}</h2>
              <Notice kind="ok" text={c.req.query('saved') ? t('system.alertSaved') : undefined} />
              {c.var.session.operator.role !== 'viewer' && (
                <p>
                  <a href={alertFormAction(c)}>{t('system.alertEdit')}</a>
                </p>
              )}
              <DataTable
                rows={ALERT_RULE_KEYS.map((key) => ({ key, ...settings.rules[key] }))}
                empty={t('common.empty')}
                columns={[
                  { label: t('system.rule'), cell: (r) => t(`system.rule.${r.key}`) },
                  {
                    label: t('system.enabled'),
                    cell: (r) => (r.enabled ? t('common.yes') : t('common.no')),
                  },
                  {
                    label: t('system.threshold'),
                    num: true,
                    cell: (r) => threshold(t, fmt.percent, ALERT_RULES[r.key].unit, r.threshold),
                  },
                  {
                    label: t('system.window'),
                    num: true,
                    cell: (r) =>
                      r.windowMinutes
                        ? t('system.minutes', { n: r.windowMinutes })
                        : t('activities.none'),
                  },
                  {
                    label: t('system.repeat'),
                    num: true,
                    cell: (r) => t('system.minutes', { n: r.repeatMinutes }),
                  },
                ]}
              />
            </section>
          )}
        </>,
      )
    })
  },
}
