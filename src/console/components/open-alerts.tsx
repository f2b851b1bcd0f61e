/** The open alerts card (概览 and 系统): each alert's message and when it opened. */
import type { listAlerts } from '../../analytics/alerts.js'
import type { Format } from '../format.js'
import type { Translate } from '../i18n.js'

type OpenAlert = Awaited<ReturnType<typeof listAlerts>>['open'][number]

export function OpenAlerts(p: { alerts: OpenAlert[]; t: Translate; fmt: Format }) {
  const { t, fmt } = p
  return (
    <section class="card" aria-labelledby="alerts">
      <h2 id="alerts">{t('overview.alerts')}</h2>
      {p.alerts.length === 0 ? (
        <p class="empty">{t('overview.alertsNone')}</p>
      ) : (
        <ul class="list">
          {p.alerts.map((a) => (
            <li>
              {a.message}
              <br />
              <span class="muted">
                {t('overview.alertOpened', { time: fmt.dateTime(new Date(a.opened_at)) })}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
