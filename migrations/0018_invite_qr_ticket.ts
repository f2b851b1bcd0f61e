import type { Kysely } from 'kysely'

/**
 * The invite QR cache keeps the ticket only: the image URL is built from the current
 * `qrImageBase` whenever the QR is shown, so a changed base (the sandbox API's port after a restart,
 * a proxy) never leaves a stale link behind.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('invite_qr').dropColumn('image_url').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('invite_qr').addColumn('image_url', 'text').execute()
}
