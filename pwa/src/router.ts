import { createRouter, createWebHistory } from 'vue-router'
import HomeView from './views/HomeView.vue'
import { loadSession } from './lib/session'
import { isStaffLike } from './lib/staff'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', name: 'home', component: HomeView, meta: { title: '签到', tab: true } },
    { path: '/scan', name: 'scan', component: () => import('./views/ScanView.vue'), meta: { title: '扫码签到' } },
    { path: '/q/:token', name: 'qlink', component: () => import('./views/QLinkView.vue'), meta: { title: '扫码签到', public: true } },
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { title: '登录', public: true } },
    { path: '/activate', name: 'activate', component: () => import('./views/ActivateView.vue'), meta: { title: '激活账号', public: true } },
    { path: '/records', name: 'records', component: () => import('./views/RecordsView.vue'), meta: { title: '签到记录', tab: true } },
    { path: '/points', name: 'points', component: () => import('./views/PointsView.vue'), meta: { title: '我的积分', tab: true } },
    { path: '/me', name: 'me', component: () => import('./views/MeView.vue'), meta: { title: '我的', tab: true } },
    { path: '/card', name: 'card', component: () => import('./views/CardView.vue'), meta: { title: '我的党员证' } },
    { path: '/pairings', name: 'pairings', component: () => import('./views/PairingsView.vue'), meta: { title: '一帮一结对' } },
    { path: '/pairings/:id', name: 'pairing', component: () => import('./views/PairingView.vue'), meta: { title: '结对详情' } },
    { path: '/rankings', name: 'rankings', component: () => import('./views/RankingsView.vue'), meta: { title: '排行榜' } },
    { path: '/staff/race', name: 'staff-race', component: () => import('./views/staff/RaceView.vue'), meta: { title: '支部赛马', staff: true } },
    { path: '/hours', name: 'hours', component: () => import('./views/MyHoursView.vue'), meta: { title: '志愿服务时长' } },
    { path: '/staff/import', name: 'staff-import', component: () => import('./views/staff/ImportView.vue'), meta: { title: '批量导入党员', staff: true } },
    { path: '/staff/reports', name: 'staff-reports', component: () => import('./views/staff/ReportsView.vue'), meta: { title: '报表导出', staff: true } },
    { path: '/staff/rules', name: 'staff-rules', component: () => import('./views/staff/RulesView.vue'), meta: { title: '积分规则', staff: true } },
    { path: '/staff/adjust', name: 'staff-adjust', component: () => import('./views/staff/AdjustView.vue'), meta: { title: '积分奖惩', staff: true } },
    { path: '/staff/pairings', name: 'staff-pairings', component: () => import('./views/staff/StaffPairingsView.vue'), meta: { title: '一帮一管理', staff: true } },
    { path: '/activities/:id', name: 'activity', component: () => import('./views/ActivityView.vue'), meta: { title: '活动详情' } },
    { path: '/staff', name: 'staff', component: () => import('./views/staff/StaffHomeView.vue'), meta: { title: '工作台', staff: true, staffTab: true } },
    { path: '/staff/activities', name: 'staff-activities', component: () => import('./views/staff/StaffActivitiesView.vue'), meta: { title: '活动管理', staff: true, staffTab: true } },
    { path: '/staff/activities/new', name: 'staff-activity-new', component: () => import('./views/staff/ActivityFormView.vue'), meta: { title: '新建活动', staff: true } },
    { path: '/staff/activities/:id', name: 'staff-activity', component: () => import('./views/staff/StaffActivityView.vue'), meta: { title: '活动详情', staff: true } },
    { path: '/staff/activities/:id/edit', name: 'staff-activity-edit', component: () => import('./views/staff/ActivityFormView.vue'), meta: { title: '编辑活动', staff: true } },
    { path: '/staff/scan', name: 'staff-scan', component: () => import('./views/staff/StaffScanView.vue'), meta: { title: '扫证签到', staff: true, staffTab: true } },
    { path: '/staff/review', name: 'staff-review', component: () => import('./views/staff/ReviewView.vue'), meta: { title: '待审核', staff: true, staffTab: true } },
    { path: '/staff/more', name: 'staff-more', component: () => import('./views/staff/StaffMoreView.vue'), meta: { title: '更多', staff: true, staffTab: true } },
    { path: '/staff/members', name: 'staff-members', component: () => import('./views/staff/MembersView.vue'), meta: { title: '党员管理', staff: true } },
    { path: '/staff/members/:id', name: 'staff-member', component: () => import('./views/staff/MemberView.vue'), meta: { title: '党员信息', staff: true } },
    { path: '/staff/admin', name: 'staff-admin', component: () => import('./views/staff/AdminView.vue'), meta: { title: '组织与服务站', staff: true } },
    { path: '/staff/poster/:kind(station|activity)/:id', name: 'poster', component: () => import('./views/staff/PosterView.vue'), meta: { title: '签到海报', staff: true, bare: true } },
    { path: '/kiosk/:stationId', name: 'kiosk', component: () => import('./views/staff/KioskView.vue'), meta: { title: '签到屏', staff: true, bare: true } },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  const session = await loadSession()
  if (!session || session.expired) return { name: 'login', query: { next: to.fullPath } }
  if (to.meta.staff && !isStaffLike(session.user)) return { name: 'home' }
  // Staff without a member record have no member pages: their home is the staff panel.
  if (to.name === 'home' && session.user.member_id == null && isStaffLike(session.user)) return { name: 'staff' }
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title as string} · 红驿` : '红驿'
})
