// One IndexedDB database shared by the page and the service worker.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb'

export type ItemState = 'queued' | 'done'

export interface CheckinResult {
  status: 'accepted' | 'duplicate' | 'pending_review' | 'rejected'
  reason: string | null
  message: string
  points_awarded: number
  checkin_id: number | null
  activity_id: number | null
  station_id: number | null
}

/**
 * A check-in kept on the device until the server has judged it: a member's own scan (`self`) or
 * one a staff user made for a member (`staff`: card scan or by hand). `owner_id` is the user who
 * made it; only that user's session sends it.
 */
export interface OutboxItem {
  client_uuid: string
  owner_id: number
  channel: 'self' | 'staff' | 'visit'
  token: string // the scanned code (self) or member card code (staff, may be empty for by-hand)
  member_id?: number // staff by hand: the member chosen from search
  scanned_at: string // RFC 3339 with the phone's offset
  kind: 'in' | 'out'
  activity_id?: number
  label: string // what the member saw: activity title or station name
  visit?: VisitPayload // channel 'visit': a 一帮一 visit record
  state: ItemState
  created_ms: number
  result?: CheckinResult
  synced_ms?: number
}

/** A 一帮一 visit written on the phone (sent to POST /pairings/{id}/visits, idempotent by client_uuid). */
export interface VisitPayload {
  pairing_id: number
  mode: string
  content: string
  problems?: string
  help_given?: string
  outcome?: string
}

interface HongyiDB extends DBSchema {
  outbox: {
    key: string
    value: OutboxItem
    indexes: { by_owner_state: [number, ItemState]; by_created: number }
  }
  kv: { key: string; value: unknown }
}

let opened: Promise<IDBPDatabase<HongyiDB>> | null = null

export function db(): Promise<IDBPDatabase<HongyiDB>> {
  if (!opened) {
    opened = openDB<HongyiDB>('hongyi', 1, {
      upgrade(database) {
        const outbox = database.createObjectStore('outbox', { keyPath: 'client_uuid' })
        outbox.createIndex('by_owner_state', ['owner_id', 'state'])
        outbox.createIndex('by_created', 'created_ms')
        database.createObjectStore('kv')
      },
    })
  }
  return opened
}

export async function kvGet<T>(key: string): Promise<T | undefined> {
  return (await (await db()).get('kv', key)) as T | undefined
}

export async function kvSet(key: string, value: unknown): Promise<void> {
  await (await db()).put('kv', value, key)
}

export async function kvDelete(key: string): Promise<void> {
  await (await db()).delete('kv', key)
}

/** Keys that belong to the device, not to whoever is logged in. */
const DEVICE_KEYS = new Set(['session', 'jwks', 'kiosk_identity'])

/** Drops every per-user cache (records, points, pairings, schedule…) so the next account on a shared
 * phone or station tablet never sees the previous one's data. The outbox is kept: its items carry
 * their owner and only that owner's session sends them. */
export async function clearUserCaches(): Promise<void> {
  const database = await db()
  const tx = database.transaction('kv', 'readwrite')
  for (const key of await tx.store.getAllKeys()) {
    if (!DEVICE_KEYS.has(String(key))) await tx.store.delete(key)
  }
  await tx.done
}
