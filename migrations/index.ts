/**
 * Every migration, in order. Listed statically (not read from disk) so the same Migrator runs on
 * Node and on Workers. Add a file `NNNN_name.ts` and one line here.
 */
import type { Migration } from 'kysely'
import * as m0001 from './0001_foundation.js'
import * as m0002 from './0002_wechat_api.js'
import * as m0003 from './0003_points.js'
import * as m0004 from './0004_rewards.js'
import * as m0005 from './0005_audit_log.js'
import * as m0006 from './0006_invites.js'
import * as m0007 from './0007_ledger_functions.js'
import * as m0008 from './0008_commerce.js'
import * as m0009 from './0009_job_runs.js'
import * as m0010 from './0010_segments.js'
import * as m0011 from './0011_campaigns.js'
import * as m0012 from './0012_activities.js'
import * as m0013 from './0013_member_tags.js'
import * as m0014 from './0014_identities.js'
import * as m0015 from './0015_moderators.js'
import * as m0016 from './0016_wecom_join_ways.js'
import * as m0017 from './0017_member_display_names.js'
import * as m0018 from './0018_invite_qr_ticket.js'
import * as m0019 from './0019_replay_claim_functions.js'
import * as m0020 from './0020_replay_claims.js'
import * as m0021 from './0021_outbox_lanes.js'
import * as m0022 from './0022_segment_transitions.js'
import * as m0023 from './0023_job_run_leases.js'
import * as m0024 from './0024_campaign_rollups.js'
import * as m0025 from './0025_refund_queue.js'
import * as m0029 from './0029_refund_poll.js'
import * as m0030 from './0030_analytics_facts.js'
import * as m0032 from './0032_alerts.js'
import * as m0033 from './0033_reconciliation.js'
import * as m0034 from './0034_transfers.js'
import * as m0035 from './0035_frozen_points.js'
import * as m0036 from './0036_cohort_retention.js'
import * as m0037 from './0037_cohort_segments_ltv.js'
import * as m0038 from './0038_console.js'
import * as m0039 from './0039_campaign_day_indexes.js'
import * as m0040 from './0040_ledger_day_index.js'
import * as m0041 from './0041_checkins_day_index.js'
import * as m0042 from './0042_checkin_makeup.js'
import * as m0043 from './0043_points_expiry.js'
import * as m0044 from './0044_checkin_reminders.js'
import * as m0045 from './0045_badges.js'
import * as m0046 from './0046_earn_triggers.js'
import * as m0047 from './0047_journeys.js'
import * as m0048 from './0048_recommendations.js'
import * as m0049 from './0049_pay_events_reference_index.js'
import * as m0050 from './0050_job_run_cursors.js'
import * as m0051 from './0051_engagement_gaps.js'
import * as m0053 from './0053_receive_outcome.js'
import * as m0054 from './0054_member_segments.js'
import * as m0055 from './0055_mp_credit_granted_at.js'
import * as m0056 from './0056_subscribe_accepted_at.js'
import * as m0057 from './0057_cheaper_checkin.js'
import * as m0058 from './0058_rule_points_positive.js'
import * as m0059 from './0059_robot_posts.js'
import * as m0060 from './0060_admin_ledger_keys.js'
import * as m0061 from './0061_outbox_expires_at.js'
import * as m0062 from './0062_inbound_claimed_at.js'
import * as m0063 from './0063_message_keyed_redemptions.js'
import * as m0064 from './0064_push_outcomes_audit_retention.js'
import * as m0065 from './0065_mp_link_moves.js'
import * as m0066 from './0066_first_purchase_once.js'
import * as m0067 from './0067_marketing_opted_out_at.js'
import * as m0068 from './0068_order_stock_taken.js'
import * as m0069 from './0069_redemption_stock_taken.js'
import * as m0070 from './0070_refund_cap_paid.js'
import * as m0071 from './0071_outbox_expiring_index.js'
import * as m0072 from './0072_join_way_chats.js'
import * as m0073 from './0073_transfer_alert_indexes.js'
import * as m0074 from './0074_checkin_no_key_lock.js'
import * as m0075 from './0075_outbox_expiring_claimed.js'
import * as m0076 from './0076_cs_window_quota.js'
import * as m0077 from './0077_cs_window_refusals.js'
import * as m0078 from './0078_order_expire_error.js'
import * as m0079 from './0079_outbox_non_account_items.js'
import * as m0080 from './0080_checkin_reminder_cancelled.js'
import * as m0082 from './0082_points_taken_back_unearned.js'
import * as m0083 from './0083_invite_dropped.js'
import * as m0084 from './0084_activity_descriptions_base_points.js'
import * as m0085 from './0085_outbox_member_queue.js'
import * as m0086 from './0086_outbox_retrying.js'
import * as m0087 from './0087_campaign_reach_cache.js'
import * as m0088 from './0088_returning_member_write.js'
import * as m0089 from './0089_campaign_counts_cache.js'
import * as m0090 from './0090_campaign_count_time.js'
import * as m0091 from './0091_push_path_domains.js'
import * as m0092 from './0092_cheaper_awards.js'
import * as m0093 from './0093_checkin_batch.js'
import * as m0094 from './0094_receive_batch.js'

export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_wechat_api': m0002,
  '0003_points': m0003,
  '0004_rewards': m0004,
  '0005_audit_log': m0005,
  '0006_invites': m0006,
  '0007_ledger_functions': m0007,
  '0008_commerce': m0008,
  '0009_job_runs': m0009,
  '0010_segments': m0010,
  '0011_campaigns': m0011,
  '0012_activities': m0012,
  '0013_member_tags': m0013,
  '0014_identities': m0014,
  '0015_moderators': m0015,
  '0016_wecom_join_ways': m0016,
  '0017_member_display_names': m0017,
  '0018_invite_qr_ticket': m0018,
  '0019_replay_claim_functions': m0019,
  '0020_replay_claims': m0020,
  '0021_outbox_lanes': m0021,
  '0022_segment_transitions': m0022,
  '0023_job_run_leases': m0023,
  '0024_campaign_rollups': m0024,
  '0025_refund_queue': m0025,
  '0029_refund_poll': m0029,
  '0030_analytics_facts': m0030,
  '0032_alerts': m0032,
  '0033_reconciliation': m0033,
  '0034_transfers': m0034,
  '0035_frozen_points': m0035,
  '0036_cohort_retention': m0036,
  '0037_cohort_segments_ltv': m0037,
  '0038_console': m0038,
  '0039_campaign_day_indexes': m0039,
  '0040_ledger_day_index': m0040,
  '0041_checkins_day_index': m0041,
  '0042_checkin_makeup': m0042,
  '0043_points_expiry': m0043,
  '0044_checkin_reminders': m0044,
  '0045_badges': m0045,
  '0046_earn_triggers': m0046,
  '0047_journeys': m0047,
  '0048_recommendations': m0048,
  '0049_pay_events_reference_index': m0049,
  '0050_job_run_cursors': m0050,
  '0051_engagement_gaps': m0051,
  '0053_receive_outcome': m0053,
  '0054_member_segments': m0054,
  '0055_mp_credit_granted_at': m0055,
  '0056_subscribe_accepted_at': m0056,
  '0057_cheaper_checkin': m0057,
  '0058_rule_points_positive': m0058,
  '0059_robot_posts': m0059,
  '0060_admin_ledger_keys': m0060,
  '0061_outbox_expires_at': m0061,
  '0062_inbound_claimed_at': m0062,
  '0063_message_keyed_redemptions': m0063,
  '0064_push_outcomes_audit_retention': m0064,
  '0065_mp_link_moves': m0065,
  '0066_first_purchase_once': m0066,
  '0067_marketing_opted_out_at': m0067,
  '0068_order_stock_taken': m0068,
  '0069_redemption_stock_taken': m0069,
  '0070_refund_cap_paid': m0070,
  '0071_outbox_expiring_index': m0071,
  '0072_join_way_chats': m0072,
  '0073_transfer_alert_indexes': m0073,
  '0074_checkin_no_key_lock': m0074,
  '0075_outbox_expiring_claimed': m0075,
  '0076_cs_window_quota': m0076,
  '0077_cs_window_refusals': m0077,
  '0078_order_expire_error': m0078,
  '0079_outbox_non_account_items': m0079,
  '0080_checkin_reminder_cancelled': m0080,
  '0082_points_taken_back_unearned': m0082,
  '0083_invite_dropped': m0083,
  '0084_activity_descriptions_base_points': m0084,
  '0085_outbox_member_queue': m0085,
  '0086_outbox_retrying': m0086,
  '0087_campaign_reach_cache': m0087,
  '0088_returning_member_write': m0088,
  '0089_campaign_counts_cache': m0089,
  '0090_campaign_count_time': m0090,
  '0091_push_path_domains': m0091,
  '0092_cheaper_awards': m0092,
  '0093_checkin_batch': m0093,
  '0094_receive_batch': m0094,
}
