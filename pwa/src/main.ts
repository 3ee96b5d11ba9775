import { createApp } from 'vue'
import 'vant/es/toast/style'
import 'vant/es/dialog/style'
import 'vant/es/notify/style'
import './styles.css'
import App from './App.vue'
import { router } from './router'
import { loadPrefs } from './lib/prefs'
import { startApp } from './lib/store'

loadPrefs()
createApp(App).use(router).mount('#app')
void startApp()
