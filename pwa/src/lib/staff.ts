// Staff-side API shapes and calls (stations, activities, review, members, kiosks, grants).
import { api } from './http'
import type { User } from './session'
import type { Activity } from './schedule'

export const STAFF_ROLES = ['staff', 'secretary', 'admin']
export const isStaffLike = (user?: User) => Boolean(user?.roles.some((r) => STAFF_ROLES.includes(r)))
export const isAdmin = (user?: User) => Boolean(user?.roles.includes('admin'))
/** planned (check-in not yet open) or open: the activity still takes check-ins and edits. */
export const isLive = (status: string) => status === 'planned' || status === 'open'
export const isManager = (user?: User) => Boolean(user?.roles.some((r) => r === 'admin' || r === 'secretary'))

export interface Station {
  id: number; name: string; org_id: number; org_name: string; address: string; lat: number | null; lng: number | null
  geofence_m: number | null; service_hours: string; poster_version: number; status: string
}
export interface Org { id: number; name: string; kind: string; parent_id: number | null; path: string; depth: number; secretary_name: string | null; status: string }
export interface Member {
  id: number; name: string; phone: string; gender: string | null; member_type: string; status: string
  org_id: number; org_name: string; tags: string[]; card_version: number; activated: boolean
}
export interface LiveActivity { id: number; title: string; starts_at: string; ends_at: string; status: string; checked_in: number; pending: number }
export interface LiveRecent { name_masked: string; kind: string; method: string; status: string; at: string }
export interface LiveFeed { station_id: number; activities: LiveActivity[]; recent: LiveRecent[] }
export interface Checkin {
  id: number; member_id: number; member_name: string; activity_id: number | null; activity_title: string | null
  station_id: number; station_name: string; kind: string; method: string; status: string; reason: string | null
  scanned_at: string; received_at: string; points: number
}
export interface AttendanceItem { member_id: number; name: string; org_name: string; state: string; method: string | null; checked_in_at?: string | null; checked_out_at?: string | null }
export interface Attendance { activity_id: number; required: boolean; expected: number; present: number; pending: number; absent: number; excused: number; items: AttendanceItem[] }
export interface LeaveRequest {
  id: number; activity_id: number; activity_title: string; activity_starts_at: string; member_id: number; member_name: string
  org_name: string; reason: string; status: string; created_at: string; decided_at: string | null; note: string | null; points_restored: number
}
export interface Kiosk { id: number; station_id: number; name: string; kid: string; status: string; created_at: string; revoked_at: string | null }
export interface Grant { id: number; user_id: number; display_name: string; phone: string; role: string; org_id: number | null; station_id: number | null; scope_name: string }

export const ACTIVITY_TYPES: Record<string, string> = {
  branch_meeting: '支部党员大会', committee_meeting: '支委会', group_meeting: '党小组会', party_lecture: '党课',
  theme_day: '主题党日', life_meeting: '组织生活会', evaluation: '民主评议', volunteer: '志愿服务', other: '其他活动',
}
export const METHOD_LABELS: Record<string, string> = {
  self: '本人扫码', staff_card: '工作人员扫证', staff_manual: '手工签到', kiosk: '签到屏',
}
export const STATE_LABELS: Record<string, string> = { present: '出席', pending: '待审核', absent: '缺席', excused: '请假' }
export const MEMBER_STATUS: Record<string, string> = {
  normal: '正常', inflow: '流入', outflow: '流出', suspended: '停止党籍', deceased: '去世', transferred: '已转出',
}

export const myStations = () => api<Station[]>('/stations')
export const stationActivities = (stationId: number, sinceDays = 1) =>
  api<Activity[]>(`/activities?station_id=${stationId}&since=${encodeURIComponent(new Date(Date.now() - sinceDays * 86400_000).toISOString())}&limit=200`)
export const liveFeed = (stationId: number) => api<LiveFeed>(`/stations/${stationId}/live`)
export const reviewQueue = () => api<Checkin[]>('/checkins/review')
export const pendingLeave = () => api<LeaveRequest[]>('/leave-requests?status=pending')
export const decideLeave = (id: number, approve: boolean, note: string) =>
  api<LeaveRequest>(`/leave-requests/${id}/decision`, { method: 'POST', body: { approve, note } })
export const decide = (id: number, accept: boolean, note: string) =>
  api<{ id: number; status: string; points_awarded: number; message: string }>(`/checkins/${id}/decision`, { method: 'POST', body: { accept, note } })
