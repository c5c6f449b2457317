// The PinGlass API (docs/http-api.md) as the page uses it. Every call sends
// `Authorization: tma <initData>`; an error answer's envelope becomes an ApiError with its
// code. GETs and uploads (the server keeps one copy of an image) are retried when the
// network fails; nothing else is sent twice on its own.

import { sleep } from './dom.js';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
  get network() { return this.code === 'NETWORK'; }
}

let initData = '';
export function setInitData(value) { initData = value; }
export function hasInitData() { return initData !== ''; }

const RETRIES = [600, 2000, 5000];

// What an answer without our envelope means (nginx's own 413, 429 and 50x pages).
const BY_STATUS = { 401: 'UNAUTHORIZED', 404: 'NOT_FOUND', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMIT_EXCEEDED', 502: 'SERVICE_UNAVAILABLE', 503: 'SERVICE_UNAVAILABLE', 504: 'SERVICE_UNAVAILABLE' };

function errorFrom(status, body, retryAfter) {
  const e = (body && body.error) || {};
  const err = new ApiError(status, e.code || BY_STATUS[status] || `HTTP_${status}`, e.message, e.details);
  if (retryAfter && !err.details.retryAfter) err.details.retryAfter = Number(retryAfter);
  return err;
}

function parse(text) {
  if (!text) return null;
  try { return JSON.parse(text); } catch { return null; }
}

async function request(method, path, body, { retry = method === 'GET' } = {}) {
  const headers = { Authorization: `tma ${initData}` };
  const opts = { method, headers, cache: 'no-store' };
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
  for (let attempt = 0; ; attempt += 1) {
    let res;
    try {
      res = await fetch(path, opts);
    } catch {
      if (!retry || attempt >= RETRIES.length) throw new ApiError(0, 'NETWORK', 'network');
      await sleep(RETRIES[attempt]);
      continue;
    }
    if (res.status === 503 && retry && attempt < RETRIES.length) { await sleep(RETRIES[attempt] * 2); continue; }
    const data = parse(await res.text());
    if (res.ok) return data;
    throw errorFrom(res.status, data, res.headers.get('Retry-After'));
  }
}

/** One image as raw bytes, with upload progress (0…1); retried when the connection fails. */
export async function uploadReference(avatarId, blob, onProgress) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await uploadOnce(avatarId, blob, onProgress);
    } catch (e) {
      if (!(e instanceof ApiError) || !e.network || attempt >= RETRIES.length - 1) throw e;
      onProgress(0);
      await sleep(RETRIES[attempt]);
    }
  }
}

function uploadOnce(avatarId, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/avatars/${encodeURIComponent(avatarId)}/references`);
    xhr.setRequestHeader('Authorization', `tma ${initData}`);
    xhr.setRequestHeader('Content-Type', blob.type || 'application/octet-stream');
    xhr.timeout = 120000;
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      const data = parse(xhr.responseText);
      // 400 with the same shape: the image was refused (its reason and code in `rejected`).
      if (xhr.status === 201 || (xhr.status === 400 && data && Array.isArray(data.rejected))) resolve(data);
      else reject(errorFrom(xhr.status, data, xhr.getResponseHeader('Retry-After')));
    };
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'network'));
    xhr.ontimeout = xhr.onerror;
    xhr.send(blob);
  });
}

const q = encodeURIComponent;

export const api = {
  me: () => request('GET', '/api/me'),
  updateMe: (fields) => request('PATCH', '/api/me', fields),
  deleteMyData: () => request('DELETE', '/api/me/data'),
  pricing: () => request('GET', '/api/pricing'),
  styles: () => request('GET', '/api/styles'),
  avatars: () => request('GET', '/api/avatars'),
  avatar: (id) => request('GET', `/api/avatars/${q(id)}`),
  createAvatar: (name) => request('POST', '/api/avatars', { name }),
  renameAvatar: (id, name) => request('PATCH', `/api/avatars/${q(id)}`, { name }),
  deleteAvatar: (id) => request('DELETE', `/api/avatars/${q(id)}`),
  deleteReference: (id, refId) => request('DELETE', `/api/avatars/${q(id)}/references/${q(refId)}`),
  jobs: () => request('GET', '/api/jobs'),
  job: (id) => request('GET', `/api/jobs/${q(id)}`),
  paymentStatus: (paymentId) => request('GET', `/api/payment/status${paymentId ? `?payment_id=${q(paymentId)}` : ''}`),
  createPayment: (body) => request('POST', '/api/payment/create', body),
  generate: (body) => request('POST', '/api/generate', body),
};
