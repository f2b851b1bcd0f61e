/**
 * 推送 → 编辑 (`/campaigns/:id/edit`): the new-campaign form, prefilled with the campaign, for one
 * that has not started sending. Saving goes through `updateCampaign` (PATCH campaigns/:id's
 * action: the same checks, the campaign row-locked against the campaigns job); bad input
 * re-renders the form naming the field and changes nothing; a campaign that started sending or
 * was finished — also one that started while the form was open — is refused with the reason.
 */
import { updateCampaign } from '../../admin/actions/campaign-actions.js'
import { campaignView, editRefusal, findCampaign } from '../../admin/reads/campaign-views.js'
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
import { campaignFormValues, formValues, readCampaignForm } from './campaign-form.js'
import { type CampaignFormPage, showCampaignForm } from './campaign-new.js'

const PATH = '/campaigns/:id{[0-9]+}/edit'

/** The account's campaign the path names, if it may be edited; else the refusal. */
async function editable(c: ConsoleContext, deps: ConsoleDeps) {
  const appid = accountOf(c)
  const row = await findCampaign(deps.db, appid, c.req.param('id') ?? '')
  if (!row) throw new ConsoleRefusal(404, 'campaigns.unknown')
  const k = campaignView(row)
  const refusal = await editRefusal(deps.db, k)
  if (refusal) throw new ConsoleRefusal(409, `campaignEdit.${refusal}`, { name: k.name })
  const { t } = c.var
  const page: CampaignFormPage = {
    action: `/console/campaigns/${k.id}/edit`,
    title: t('campaignEdit.title', { name: k.name }),
    submit: t('campaignEdit.submit'),
    intro: [
      t('campaignEdit.status', { status: t(`campaigns.status.${k.status}` as MessageKey) }),
      t('campaignEdit.note'),
    ],
  }
  return { appid, k, page }
}

export const campaignEditPage: ConsolePage = {
  section: 'campaigns',
  path: '/campaigns/:id/edit',
  mount(app, deps) {
    app.get(PATH, requireRole('owner', 'operator'), async (c) => {
      const { appid, k, page } = await editable(c, deps)
      const form = campaignFormValues(k, deps.timeZone)
      if ('notFit' in form)
        throw new ConsoleRefusal(409, 'campaignEdit.notForm', {
          what: c.var.t(`campaignEdit.what.${form.notFit}`),
          appid,
          id: k.id,
        })
      return showCampaignForm(c, deps, form.values, page)
    })

    app.post(PATH, requireRole('owner', 'operator'), async (c) => {
      const { appid, k, page } = await editable(c, deps)
      const f = formValues(await c.req.parseBody())
      const read = readCampaignForm(f, deps.timeZone, c.var.t, deps.clock.now())
      if (!('input' in read)) return showCampaignForm(c, deps, f, page, read)
      const actor = actorOf(c)
      const r = await updateCampaign(deps, actor, { ...read.input, appid, id: k.id })
      if (!r) throw new ConsoleRefusal(404, 'campaigns.unknown')
      if (r.status !== 'updated')
        throw new ConsoleRefusal(409, `campaignEdit.${r.status}`, { name: k.name })
      return c.redirect(`/console/campaigns?edited=${k.id}`, 303)
    })
  },
}
