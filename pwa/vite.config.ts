import { defineConfig, type Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { VantResolver } from '@vant/auto-import-resolver'
import { VitePWA } from 'vite-plugin-pwa'

// Vant's icon font is inlined as woff2; its CSS also names a woff copy on a CDN, which phones
// offline cannot reach and our CSP forbids. Drop that fallback from the built CSS.
function dropCdnFontFallback(): Plugin {
  return {
    name: 'hongyi-drop-cdn-font-fallback',
    enforce: 'post',
    generateBundle(_options, bundle) {
      for (const file of Object.values(bundle)) {
        if (file.type === 'asset' && file.fileName.endsWith('.css')) {
          file.source = String(file.source).replace(/,\s*url\((?:https?:)?\/\/at\.alicdn\.com[^)]*\)\s*format\(["']?\w+["']?\)/g, '')
        }
      }
    },
  }
}

// The API runs on the same origin (the Python server serves dist/); `npm run dev` proxies to it.
export default defineConfig({
  plugins: [
    vue(),
    dropCdnFontFallback(),
    Components({ resolvers: [VantResolver()], dts: false }),
    VitePWA({
      strategies: 'injectManifest',
      srcDir: 'src',
      filename: 'sw.ts',
      registerType: 'prompt',
      injectRegister: false,
      manifest: {
        id: '/',
        name: '红驿 · 党员联络服务站',
        short_name: '红驿',
        description: '党员扫码签到、志愿服务时长与积分管理',
        lang: 'zh-CN',
        start_url: '/',
        scope: '/',
        display: 'standalone',
        orientation: 'portrait',
        theme_color: '#c8102e',
        background_color: '#ffffff',
        icons: [
          { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: '/icons/maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      injectManifest: {
        globPatterns: ['**/*.{js,css,html,svg,png,wasm,webmanifest}'],
        maximumFileSizeToCacheInBytes: 4 * 1024 * 1024,
      },
    }),
  ],
  build: { target: 'es2020', chunkSizeWarningLimit: 1200 },
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
  test: { environment: 'node' },
})
