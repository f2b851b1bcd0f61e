/**
 * The console's pages, in navigation order. A section's first page here is its link; sections
 * with no page show as 未完成. To add a page: write `pages/<name>.tsx` exporting a `ConsolePage`
 * and list it below.
 */
import type { ConsolePage } from '../page.js'
import { activitiesPage } from './activities.js'
import { activityPage } from './activity.js'
import { campaignEditPage } from './campaign-edit.js'
import { campaignNewPage } from './campaign-new.js'
import { campaignReportPage } from './campaign-report.js'
import { campaignsPage } from './campaigns.js'
import { invitesPage } from './invites.js'
import { memberPage } from './member.js'
import { membersPage } from './members.js'
import { operatorsPage } from './operators.js'
import { overviewPage } from './overview.js'
import { retentionPage } from './retention.js'
import { systemPage } from './system.js'

export const consolePages: ConsolePage[] = [
  overviewPage,
  membersPage,
  memberPage,
  retentionPage,
  invitesPage,
  campaignsPage,
  campaignNewPage,
  campaignEditPage,
  campaignReportPage,
  activitiesPage,
  activityPage,
  systemPage,
  operatorsPage,
]
