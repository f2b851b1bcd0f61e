/** Followers and tags (§8): user info, the follower list (paginated), tag basics. */
import type { ApiClient } from './client.js'
import { WechatValidationError } from './errors.js'

/** `user/info`; for a non-follower only `openid` and `subscribe: 0` come back. */
export interface UserInfo {
  subscribe: 0 | 1
  openid: string
  unionid?: string
  subscribe_time?: number
  subscribe_scene?: string
  qr_scene?: number
  qr_scene_str?: string
  tagid_list?: number[]
  remark?: string
}

export async function getUserInfo(api: ApiClient, openid: string): Promise<UserInfo> {
  const res = await api.call({
    method: 'user.info',
    path: '/cgi-bin/user/info',
    http: 'GET',
    query: { openid, lang: 'zh_CN' },
    auth: true,
  })
  return res as unknown as UserInfo
}

/** Most openids one `user/info/batchget` call takes (§8.1). */
export const USER_INFO_BATCH_MAX = 100

/**
 * `user/info/batchget`: the `user/info` of up to {@link USER_INFO_BATCH_MAX} followers in one call
 * (the same quota as `user/info`); each entry has the fields of {@link UserInfo} (a non-follower:
 * only `openid` and `subscribe: 0`; `unionid` only when the account is bound to an Open Platform
 * account).
 * @example const infos = await getUsersInfo(api, ['o1', 'o2'])
 */
export async function getUsersInfo(
  api: ApiClient,
  openids: readonly string[],
): Promise<UserInfo[]> {
  if (openids.length < 1 || openids.length > USER_INFO_BATCH_MAX)
    throw new WechatValidationError('user_list', `must hold 1–${USER_INFO_BATCH_MAX} openids`)
  if (openids.some((openid) => typeof openid !== 'string' || openid.length === 0))
    throw new WechatValidationError('user_list', 'openids must be non-empty strings')
  const res = await api.call({
    method: 'user.info.batchget',
    path: '/cgi-bin/user/info/batchget',
    http: 'POST',
    body: { user_list: openids.map((openid) => ({ openid, lang: 'zh_CN' })) },
    auth: true,
  })
  const list = res.user_info_list
  return (Array.isArray(list) ? list : []) as UserInfo[]
}

/** Every follower's openid, page by page (10 000 per call, 500 calls a day). */
export async function* listFollowers(api: ApiClient, startAfter = ''): AsyncGenerator<string[]> {
  let next = startAfter
  for (;;) {
    const res = await api.call({
      method: 'user.get',
      path: '/cgi-bin/user/get',
      http: 'GET',
      query: next ? { next_openid: next } : {},
      auth: true,
    })
    const ids = ((res.data as { openid?: string[] } | undefined)?.openid ?? []) as string[]
    if (ids.length > 0) yield ids
    next = String(res.next_openid ?? '')
    if (!next || ids.length === 0) return
  }
}

/** Creates a tag (≤ 30 characters, ≤ 100 tags per account). */
export async function createTag(
  api: ApiClient,
  name: string,
): Promise<{ id: number; name: string }> {
  if (name.length < 1 || name.length > 30)
    throw new WechatValidationError('tag.name', 'must be 1–30 characters')
  const res = await api.call({
    method: 'tags.create',
    path: '/cgi-bin/tags/create',
    http: 'POST',
    body: { tag: { name } },
    auth: true,
  })
  return res.tag as { id: number; name: string }
}

export async function listTags(
  api: ApiClient,
): Promise<{ id: number; name: string; count: number }[]> {
  const res = await api.call({
    method: 'tags.get',
    path: '/cgi-bin/tags/get',
    http: 'GET',
    auth: true,
  })
  return (res.tags ?? []) as { id: number; name: string; count: number }[]
}

/** Tags up to 50 followers per call; larger lists are split. */
export async function tagMembers(api: ApiClient, tagid: number, openids: string[]): Promise<void> {
  for (let i = 0; i < openids.length; i += 50) {
    await api.call({
      method: 'tags.batchtagging',
      path: '/cgi-bin/tags/members/batchtagging',
      http: 'POST',
      body: { openid_list: openids.slice(i, i + 50), tagid },
      auth: true,
    })
  }
}
