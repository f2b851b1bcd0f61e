/**
 * The console's pages, in navigation order. A section's first page here is its link (every
 * section has one; console.test.ts checks the navigation). To add a page: write `pages/<name>.tsx` exporting a `ConsolePage`
 * and list it below.
 */
import type { ConsolePage } from '../page.js'
import { activitiesPage } from './activities.js'
import { activityPage } from './activity.js'
import { badgesPage } from './badges.js'
import { campaignEditPage } from './campaign-edit.js'
import { campaignNewPage } from './campaign-new.js'
import { campaignReportPage } from './campaign-report.js'
import { campaignsPage } from './campaigns.js'
import { communityPage } from './community.js'
import { communityAuditPage } from './community-audit.js'
import { communityModeratorsPage } from './community-moderators.js'
import { invitesPage } from './invites.js'
import { journeysPage } from './journeys.js'
import { memberPage } from './member.js'
import { membersPage } from './members.js'
import { operatorsPage } from './operators.js'
import { overviewPage } from './overview.js'
import { redemptionsPage } from './redemptions.js'
import { retentionPage } from './retention.js'
import { rewardCatalogPage } from './reward-catalog.js'
import { rewardsPage } from './rewards.js'
import { shopPage } from './shop.js'
import { shopGroupBuysPage } from './shop-group-buys.js'
import { shopOrderPage } from './shop-order.js'
import { shopOrdersPage } from './shop-orders.js'
import { shopProductPage } from './shop-product.js'
import { shopReconciliationPage } from './shop-reconciliation.js'
import { shopRefundsPage } from './shop-refunds.js'
import { shopReviewsPage } from './shop-reviews.js'
import { systemPage } from './system.js'
import { transfersPage } from './transfers.js'

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
  journeysPage,
  activitiesPage,
  activityPage,
  rewardsPage,
  rewardCatalogPage,
  redemptionsPage,
  transfersPage,
  badgesPage,
  communityPage,
  communityModeratorsPage,
  communityAuditPage,
  shopPage,
  shopProductPage,
  shopGroupBuysPage,
  shopOrdersPage,
  shopOrderPage,
  shopRefundsPage,
  shopReviewsPage,
  shopReconciliationPage,
  systemPage,
  operatorsPage,
]
