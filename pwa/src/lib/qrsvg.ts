// QR codes drawn in the browser (kiosk rotating code, invite links), as SVG markup.
import { renderSVG } from 'uqr'

export function qrSvg(text: string): string {
  return renderSVG(text, { ecc: 'M', border: 2, whiteColor: '#ffffff', blackColor: '#000000' })
}
