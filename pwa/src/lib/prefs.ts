// 适老化: large-font mode, kept across visits.
import { state } from './store'

const KEY = 'hongyi.largeFont'

export function loadPrefs(): void {
  setLargeFont(localStorage.getItem(KEY) === '1')
}

export function setLargeFont(on: boolean): void {
  state.largeFont = on
  document.documentElement.classList.toggle('large-font', on)
  localStorage.setItem(KEY, on ? '1' : '0')
}
