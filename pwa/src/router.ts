import { createRouter, createWebHistory } from 'vue-router'
import HomeView from './views/HomeView.vue'
import { loadSession } from './lib/session'

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
    { path: '/activities/:id', name: 'activity', component: () => import('./views/ActivityView.vue'), meta: { title: '活动详情' } },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  const session = await loadSession()
  if (!session || session.expired) return { name: 'login', query: { next: to.fullPath } }
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title as string} · 红驿` : '红驿'
})
