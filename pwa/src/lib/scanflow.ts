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
  if (!session || session.user.member_id == null) throw new Error('not logged in')
  return enqueue({
    client_uuid: newUuid(),
    member_id: session.user.member_id,
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
    if (!session || session.user.member_id == null) return { kind: 'login_needed', token }
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
