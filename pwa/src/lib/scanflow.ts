// What happens between "a QR was decoded" and "the member sees a result": verify on the phone,
// resolve the activity, store in the outbox at once, then let the outbox sync.
import type { OutboxItem } from './db'
import { enqueue } from './outbox'
import { loadSession } from './session'
import { findActivity, openAtStation, stationName, type Activity } from './schedule'
import { extractToken, judgeTime, Refused, verifyToken, type Claims } from './tokens'
import { localIso, newUuid } from './time'

export type ScanOutcome =
  | { kind: 'queued'; item: OutboxItem }
  | { kind: 'refused'; reason: string; message: string }
  | { kind: 'choose'; pending: PendingChoice }
  | { kind: 'login_needed'; token: string }

/** A station poster with several activities open: the member picks one (or leaves it to staff). */
export interface PendingChoice {
  token: string
  scannedAt: string
  kind: 'in' | 'out'
  stationId: number
  stationName: string
  options: Activity[]
}

async function store(token: string, scannedAt: string, kind: 'in' | 'out', label: string, activityId?: number) {
  const session = await loadSession()
  if (!session) throw new Error('not logged in')
  return enqueue({
    client_uuid: newUuid(),
    owner_id: session.user.id,
    channel: 'self',
    token,
    scanned_at: scannedAt,
    kind,
    activity_id: activityId,
    label,
  })
}

async function labelFor(claims: Claims): Promise<string> {
  if (claims.aid != null) {
    const activity = await findActivity(claims.aid)
    if (activity) return activity.title
  }
  if (claims.sid != null) return stationName(claims.sid)
  return '签到'
}

export async function handleScan(text: string, kind: 'in' | 'out' = 'in', at?: Date): Promise<ScanOutcome> {
  const scannedAt = at ?? new Date()
  let token: string
  try {
    token = extractToken(text)
    const session = await loadSession()
    if (!session) return { kind: 'login_needed', token }
    if (session.user.member_id == null) return { kind: 'refused', reason: 'not_allowed', message: '此账号没有关联党员信息，不能本人签到' }
    const claims = await verifyToken(token)
    judgeTime(claims, scannedAt.getTime() / 1000)
    const iso = localIso(scannedAt)
    if (claims.t === 'st' || (claims.t === 'rk' && claims.aid == null)) {
      const open = await openAtStation(claims.sid!, scannedAt)
      if (open.length > 1) {
        return {
          kind: 'choose',
          pending: { token, scannedAt: iso, kind, stationId: claims.sid!, stationName: await stationName(claims.sid!), options: open },
        }
      }
      const label = open.length === 1 ? open[0].title : `${await stationName(claims.sid!)}（到站）`
      return { kind: 'queued', item: await store(token, iso, kind, label, open[0]?.id) }
    }
    return { kind: 'queued', item: await store(token, iso, kind, await labelFor(claims)) }
  } catch (error) {
    if (error instanceof Refused) return { kind: 'refused', reason: error.reason, message: error.message }
    throw error
  }
}

/** The member's pick for a PendingChoice; null leaves it to staff (the server marks it for review). */
export async function resolveChoice(pending: PendingChoice, activity: Activity | null): Promise<OutboxItem> {
  const label = activity ? activity.title : `${pending.stationName}（待工作人员确认活动）`
  return store(pending.token, pending.scannedAt, pending.kind, label, activity?.id)
}

// -- staff side: member cards and check-in by hand, queued in the same outbox ----------------------

async function storeStaff(fields: { token: string; member_id?: number; activity_id: number; kind: 'in' | 'out'; label: string }) {
  const session = await loadSession()
  if (!session) throw new Error('not logged in')
  return enqueue({
    client_uuid: newUuid(),
    owner_id: session.user.id,
    channel: 'staff',
    scanned_at: localIso(),
    ...fields,
  })
}

/** A member card scanned by staff: verified on the device (works offline), then queued. */
export async function handleStaffScan(text: string, activityId: number, kind: 'in' | 'out', memberName?: (id: number) => string | undefined): Promise<ScanOutcome> {
  try {
    const token = extractToken(text)
    const claims = await verifyToken(token)
    if (claims.t !== 'mb' || typeof claims.mid !== 'number') {
      return { kind: 'refused', reason: 'malformed', message: '这不是党员证二维码，请扫描党员证' }
    }
    const label = memberName?.(claims.mid) ?? `党员证 ${claims.mid} 号`
    return { kind: 'queued', item: await storeStaff({ token, activity_id: activityId, kind, label }) }
  } catch (error) {
    if (error instanceof Refused) return { kind: 'refused', reason: error.reason, message: error.message }
    throw error
  }
}

/** Staff checks a member in (or out) by hand, found by name or phone. */
export async function staffManual(member: { id: number; name: string }, activityId: number, kind: 'in' | 'out') {
  return storeStaff({ token: '', member_id: member.id, activity_id: activityId, kind, label: member.name })
}
