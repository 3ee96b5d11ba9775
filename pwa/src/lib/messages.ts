// The server's reason codes and their Chinese messages (server/checkins/services.py MESSAGES):
// a code refused on the phone reads exactly as the server would have answered.
export const REASON_MESSAGES: Record<string, string> = {
  malformed: '二维码内容无法识别',
  bad_signature: '二维码签名无效，可能是伪造的',
  unknown_key: '二维码的签名密钥未知或已停用',
  revoked: '二维码已作废（海报、会员卡或签到屏已更换）',
  expired: '不在签到时间内',
  not_open: '活动未开放签到（已取消或不在本站）',
  clock_skew: '手机时间与服务器相差过大，请校准手机时间后重试',
  too_late: '离线记录超过期限未同步，已失效',
  late_sync: '离线记录同步较晚，已提交工作人员审核',
  ambiguous: '该服务站此时有多个活动，请选择具体活动；已提交工作人员审核',
  no_checkin: '还没有签到，无法签退',
  not_allowed: '您不在该活动的参加范围内',
  capacity: '活动人数已满',
  outside_geofence: '签到位置不在服务站范围内，已提交工作人员审核',
  needs_approval: '该活动的积分需工作人员审核，签到已提交审核',
  wrong_code: '这是党员证二维码，请扫描活动或服务站的签到码',
}

export const STATUS_LABELS: Record<string, string> = {
  accepted: '成功',
  duplicate: '重复',
  pending_review: '待审核',
  rejected: '被拒绝',
  queued: '待同步',
}
