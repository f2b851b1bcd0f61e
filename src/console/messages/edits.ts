/** The words of the member page's tag form and of 推送 → 编辑 (editing a campaign). */
export const zhCN = {
  'memberTag.title': '打标签',
  'memberTag.current': '当前标签：{tags}',
  'memberTag.id': '微信标签 ID',
  'memberTag.hint': '可从已用过的标签中选，或填写公众号后台的标签 ID',
  'memberTag.submit': '添加标签',
  'memberTag.done': '已添加标签 {tagid}',
  'memberTag.badId': '标签 ID 须为正整数',
  'memberTag.refused': '微信拒绝了这个标签，未添加：{reason}',
  'memberTag.failed': '暂时连不上微信接口，标签未添加，请稍后重试',
  'memberTag.noApi':
    '此公众号没有配置 AppSecret（WECHAT_SECRET），无法调用微信接口，所以不能在这里打标签',
  'memberTag.sandbox': '沙盒模式：标签发到本机模拟的微信接口，不会到达真实公众号',
  'memberTag.noRemove': '移除标签请在公众号后台操作（本后台暂不支持）',
  'campaignEdit.title': '编辑推送：{name}',
  'campaignEdit.link': '编辑',
  'campaignEdit.submit': '保存修改',
  'campaignEdit.done': '已保存“{name}”的修改',
  'campaignEdit.status': '保存后状态不变（现在：{status}）',
  'campaignEdit.note': '推送开始发送（第一批入队）之前都可以修改；之后请停止并新建',
  'campaignEdit.started': '“{name}”已开始发送（已有批次入队），不能再修改；请停止后新建',
  'campaignEdit.finished': '“{name}”已结束，不能修改',
  'campaignEdit.notForm':
    '这个推送是通过接口创建的，含有表单无法表示的内容（{what}），请用 PATCH /admin/api/accounts/{appid}/campaigns/{id} 修改',
  'campaignEdit.what.variants': '超过两个版本或版本名不是 A/B',
  'campaignEdit.what.fields': '超过 3 个模板字段',
  'campaignEdit.what.miniprogram': '小程序跳转',
  'campaignEdit.what.audience': '受众同时按分层、标签或群组合筛选',
} as const

export const en: Record<keyof typeof zhCN, string> = {
  'memberTag.title': 'Tag',
  'memberTag.current': 'Current tags: {tags}',
  'memberTag.id': 'WeChat tag id',
  'memberTag.hint': 'Pick a tag used before, or type a tag id from the account’s WeChat tags',
  'memberTag.submit': 'Add tag',
  'memberTag.done': 'Tag {tagid} added',
  'memberTag.badId': 'The tag id must be a positive whole number',
  'memberTag.refused': 'WeChat refused the tag; nothing added: {reason}',
  'memberTag.failed': 'The WeChat API could not be reached; no tag added — try again later',
  'memberTag.noApi':
    'This account has no AppSecret (WECHAT_SECRET), so the WeChat API tagging needs is unavailable',
  'memberTag.sandbox': 'Sandbox mode: tags go to the local sandbox WeChat API, not a real account',
  'memberTag.noRemove': 'Remove tags in the WeChat admin (this console cannot yet)',
  'campaignEdit.title': 'Edit campaign: {name}',
  'campaignEdit.link': 'Edit',
  'campaignEdit.submit': 'Save changes',
  'campaignEdit.done': 'Changes to “{name}” saved',
  'campaignEdit.status': 'Saving keeps its status (now: {status})',
  'campaignEdit.note':
    'A campaign can be edited until it starts sending (its first batch is enqueued); after that, stop it and make a new one',
  'campaignEdit.started':
    '“{name}” has started sending (a batch was enqueued) and can no longer be edited: stop it and make a new one',
  'campaignEdit.finished': '“{name}” is finished and cannot be edited',
  'campaignEdit.notForm':
    'This campaign was made through the API with what the form cannot show ({what}): edit it with PATCH /admin/api/accounts/{appid}/campaigns/{id}',
  'campaignEdit.what.variants': 'more than two variants, or variants not named A/B',
  'campaignEdit.what.fields': 'more than 3 template fields',
  'campaignEdit.what.miniprogram': 'a mini-program link',
  'campaignEdit.what.audience': 'an audience combining a segment, a tag or a group',
}
