// 一帮一 pairings: API shapes, labels, and queuing a visit record in the outbox (works offline).
import { enqueue } from './outbox'
import { loadSession } from './session'
import { localIso, newUuid } from './time'
import type { OutboxItem } from './db'

export interface Pairing {
  id: number; member_id: number; member_name: string; org_id: number; org_name: string; kind: string; name: string
  category: string | null; contact: string | null; contact_masked: string | null; goals: string | null; start_date: string
  end_date: string | null; interval_days: number; status: string; last_visit_at: string | null; due_on: string
  days_overdue: number; visit_count: number; verified_count: number
}
export interface Visit {
  id: number; pairing_id: number; member_id: number; member_name: string; counterpart_name: string; client_uuid: string
  visited_at: string; mode: string; content: string; problems: string; help_given: string | null; outcome: string; status: string; method: string
  verify_note: string | null; points: number
}
export interface PairingDetail extends Pairing { visits: Visit[] }

export const KINDS: Record<string, string> = { resident: '居民', worker: '职工', new_member: '新党员', other: '其他' }
export const MODES: Record<string, string> = { home: '上门走访', phone: '电话联系', online: '线上联系', station: '到站接待', other: '其他' }
export const VISIT_STATUS: Record<string, string> = { pending: '待核实', approved: '已核实', rejected: '未通过' }

/** Stores a visit on the phone at once; the outbox sends it (idempotent by client_uuid). */
export interface VisitFields { mode: string; content: string; problems?: string; help_given?: string; outcome?: string; visited_at?: Date }

export async function queueVisit(pairing: Pairing, fields: VisitFields): Promise<OutboxItem> {
  const session = await loadSession()
  if (!session) throw new Error('not logged in')
  return enqueue({
    client_uuid: newUuid(),
    owner_id: session.user.id,
    channel: 'visit',
    token: '',
    scanned_at: localIso(fields.visited_at ?? new Date()),
    kind: 'in',
    label: `走访 ${pairing.name}`,
    visit: {
      pairing_id: pairing.id, mode: fields.mode, content: fields.content,
      problems: fields.problems || undefined, help_given: fields.help_given || undefined, outcome: fields.outcome || undefined,
    },
  })
}
