// Client-side downscale before upload: at most 1536 px on the long side, re-encoded as JPEG
// through a canvas (which also drops the EXIF block: no location leaves the phone). A file
// the browser cannot decode is sent as it is, so the server's refusal names the problem.

export const MAX_SIDE = 1536;
const QUALITY = 0.88;

function decodeWithImg(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('undecodable')); };
    img.src = url;
  });
}

async function decode(file) {
  if (typeof createImageBitmap === 'function') {
    try { return await createImageBitmap(file, { imageOrientation: 'from-image' }); } catch { /* try <img> next */ }
  }
  return decodeWithImg(file);
}

/** A JPEG Blob of at most MAX_SIDE px, or null when the file is not an image we can read. */
export async function downscale(file) {
  let source;
  try { source = await decode(file); } catch { return null; }
  const w = source.width || source.naturalWidth;
  const hgt = source.height || source.naturalHeight;
  if (!w || !hgt) return null;
  const scale = Math.min(1, MAX_SIDE / Math.max(w, hgt));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(w * scale));
  canvas.height = Math.max(1, Math.round(hgt * scale));
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';   // transparent PNG areas become white, not black
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  if (typeof source.close === 'function') source.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', QUALITY));
  canvas.width = 0;   // frees the bitmap memory on phones at once
  return blob;
}
