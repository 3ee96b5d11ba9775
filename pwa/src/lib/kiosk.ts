// Kiosk mode: the station tablet holds its own Ed25519 key (non-extractable where WebCrypto has
// Ed25519, else @noble/ed25519) and signs a rotating `rk` code every 20 s — no network needed.
import { api } from './http'
import { kvGet, kvSet, kvDelete } from './db'
import type { Kiosk } from './staff'

export const ROTATE_SECONDS = 20

export interface KioskIdentity {
  station_id: number
  kiosk_id: number
  kid: string
  name: string
  engine: 'webcrypto' | 'noble'
  private_key: CryptoKey | Uint8Array
}

const KEY = 'kiosk_identity'
const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
const b64urlText = (text: string) => b64url(new TextEncoder().encode(text))

export async function loadIdentity(stationId: number): Promise<KioskIdentity | undefined> {
  const identity = await kvGet<KioskIdentity>(KEY)
  return identity?.station_id === stationId ? identity : undefined
}

export async function forgetIdentity(): Promise<void> {
  await kvDelete(KEY)
}

async function newKeyPair(): Promise<{ engine: KioskIdentity['engine']; private_key: CryptoKey | Uint8Array; x: string }> {
  try {
    const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair
    const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey)
    return { engine: 'webcrypto', private_key: pair.privateKey, x: jwk.x! }
  } catch {
    const [ed, { sha512 }] = await Promise.all([import('@noble/ed25519'), import('@noble/hashes/sha2.js')])
    ed.hashes.sha512 = sha512
    const secret = ed.utils.randomSecretKey()
    return { engine: 'noble', private_key: secret, x: b64url(ed.getPublicKey(secret)) }
  }
}

/** Generates this tablet's key pair and registers the public half with the station (staff auth). */
export async function registerKiosk(stationId: number, name: string): Promise<KioskIdentity> {
  const pair = await newKeyPair()
  const kiosk = await api<Kiosk>(`/stations/${stationId}/kiosks`, {
    method: 'POST',
    body: { name, public_key_jwk: { kty: 'OKP', crv: 'Ed25519', x: pair.x } },
  })
  const identity: KioskIdentity = { station_id: stationId, kiosk_id: kiosk.id, kid: kiosk.kid, name, engine: pair.engine, private_key: pair.private_key }
  await kvSet(KEY, identity)
  return identity
}

async function signBytes(identity: KioskIdentity, data: Uint8Array): Promise<Uint8Array> {
  if (identity.engine === 'webcrypto') {
    return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, identity.private_key as CryptoKey, data as BufferSource))
  }
  const [ed, { sha512 }] = await Promise.all([import('@noble/ed25519'), import('@noble/hashes/sha2.js')])
  ed.hashes.sha512 = sha512
  return ed.sign(data, identity.private_key as Uint8Array)
}

/** The current rotating code as the URL a phone camera opens. */
export async function rotatingUrl(identity: KioskIdentity, activityId?: number, now = Date.now()): Promise<string> {
  const claims: Record<string, number | string> = { t: 'rk', sid: identity.station_id, iat: Math.floor(now / 1000) }
  if (activityId) claims.aid = activityId
  const signed = `${b64urlText(JSON.stringify({ alg: 'EdDSA', kid: identity.kid }))}.${b64urlText(JSON.stringify(claims))}`
  const signature = await signBytes(identity, new TextEncoder().encode(signed))
  return `${location.origin}/q/${signed}.${b64url(signature)}`
}

/** Whether the server still accepts this kiosk (null when offline: unknown). */
export async function kioskStatus(identity: KioskIdentity): Promise<string | null> {
  try {
    const kiosks = await api<Kiosk[]>(`/stations/${identity.station_id}/kiosks`)
    return kiosks.find((k) => k.id === identity.kiosk_id)?.status ?? 'revoked'
  } catch {
    return null
  }
}
