/**
 * An operator changes an account's alert settings: the rules' fields (null resets one to the
 * engine's default) and the robot chats alerts go to, validated by the engine's own schema
 * (`alertSettingsPatch`, each threshold within its rule's bounds) and written with the account's
 * row locked, audited as `analytics.alert_settings`.
 */
import {
  type AlertSettingsPatch,
  alertSettingsPatch,
  type StoredSettings,
  writeAlertSettings,
} from '../../analytics/alert-rules.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** The input of {@link updateAlertSettings}: the engine's schema (`PUT analytics/alert-settings`). */
export const updateAlertSettingsInput = alertSettingsPatch

/** What the change did. */
export type UpdateAlertSettingsResult =
  | { status: 'saved'; stored: StoredSettings }
  /** `robotChats` names chats with no configured group robot: nothing changed. */
  | { status: 'unknown_robot_chats'; chats: string[] }

/**
 * Applies `patch` to the account's overrides; `robotChats` must name configured robots' chats.
 * @example await updateAlertSettings(deps, actor, { appid, patch: { rules: { error_rate: { threshold: 0.08 } } }, robotChats: [] })
 */
export async function updateAlertSettings(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: { appid: string; patch: AlertSettingsPatch; robotChats: string[] },
): Promise<UpdateAlertSettingsResult> {
  const { appid, patch } = input
  const unknown = (patch.robotChats ?? []).filter((chat) => !input.robotChats.includes(chat))
  if (unknown.length > 0) return { status: 'unknown_robot_chats', chats: unknown }
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'analytics.alert_settings',
    target: appid,
    now,
  } satisfies AuditedStep
  return auditedAction<UpdateAlertSettingsResult>(deps.db, step, async (trx) => {
    const stored = await writeAlertSettings(trx, appid, patch, now)
    return { result: { status: 'saved', stored }, details: { change: patch, stored } }
  })
}
