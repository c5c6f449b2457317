// An avatar: its selfies (3–20; add, delete), the upload queue, the way on to a set, and
// deleting the avatar.

import { h, fill, uid } from '../dom.js';
import { t, errorText } from '../i18n.js';
import { uploadQueue } from './uploads.js';
import { statusBadge, failure, confirmButton, inlineError } from './parts.js';
import { planFlow } from './plan.js';

const MIN = 3;
const MAX = 20;

/** Creates an avatar with a default name and opens it (home and the consent screen). */
export async function createAvatar(app, count, { replace = false } = {}) {
  try {
    const { avatar } = await app.api.createAvatar(t('avatar.defaultName', { n: count + 1 }));
    app.tg.haptic('success');
    if (replace) app.replace('avatar', { id: avatar.id }); else app.go('avatar', { id: avatar.id });
  } catch (err) {
    app.fail(err, 'avatar');
  }
}

export function show(view, params, app) {
  let alive = true;
  const title = h('h1', {}, t('loading'));
  const body = h('div', { class: 'stack' });
  view.append(h('section', { class: 'screen' }, title, body));

  async function load() {
    fill(body, h('p', { class: 'loading' }, t('loading')));
    let avatar;
    try { avatar = await app.api.avatar(params.id); } catch (err) {
      if (alive) fill(body, failure(app, err, load));
      return;
    }
    if (alive) render(avatar);
  }

  function render(avatar) {
    title.textContent = avatar.name;
    // In upload order: oldest first (the API's order is not that).
    const refs = [...(avatar.references || [])].sort((a, b) =>
      String(a.createdAt || '').localeCompare(String(b.createdAt || '')) || Number(a.id) - Number(b.id));
    const grid = h('ul', { class: 'refs', 'aria-label': t('avatar.selfies', { n: refs.length }) });
    const count = h('div', { class: 'count', 'aria-live': 'polite' });
    const planSlot = h('div', {});
    const badge = h('p', {});
    const update = () => {
      const n = grid.children.length;
      const status = avatar.status === 'processing' ? 'processing' : n >= MIN ? 'ready' : 'draft';
      fill(badge, statusBadge(`avatar.status.${status}`, status));
      const missing = Math.max(0, MIN - n);
      // Two sentences, two lines: the count, then what is missing.
      fill(count, h('p', { class: 'count-total' }, t('avatar.count', { n })),
        missing ? h('p', { class: 'count-need' }, t('avatar.needMore', { n: missing })) : null);
      grid.setAttribute('aria-label', t('avatar.selfies', { n }));
      [...grid.children].forEach((li, i) => {
        li.querySelector('img').alt = t('avatar.selfieAlt', { n: i + 1 });
        li.querySelector('button').setAttribute('aria-label', t('avatar.deleteSelfie', { n: i + 1 }));
      });
      // With enough selfies the set, the payment and the generate button follow on this screen.
      if (n >= MIN && !plan) { plan = planFlow(app, { avatarId: avatar.id }); fill(planSlot, plan.el); }
      if (n < MIN && plan) { plan.stop(); plan = null; planSlot.replaceChildren(); app.setMain(null); }
    };
    const addRef = (ref) => {
      if (grid.querySelector(`[data-ref-id="${ref.id}"]`)) return false;
      grid.append(refItem(app, avatar.id, ref, grid.children.length + 1, update));
      update();
      return true;
    };
    refs.forEach(addRef);

    const queue = uploadQueue({ avatarId: avatar.id, room: () => MAX - grid.children.length, onUploaded: addRef, onSettled: update,
      onUnauthorized: (err) => app.fail(err) });
    const inputId = uid('selfies');
    const input = h('input', { id: inputId, type: 'file', class: 'visually-hidden', multiple: true, accept: 'image/jpeg,image/png,image/webp,image/*',
      'data-testid': 'reference-input', onchange: () => { queue.add([...input.files]); input.value = ''; } });
    const latest = avatar.latestJob;

    fill(body,
      badge,
      h('p', {}, t('avatar.hint')),
      count,
      grid,
      h('div', { class: 'file-pick' }, input, h('label', { for: inputId, class: 'button secondary wide' }, t('avatar.add'))),
      queue.el,
      planSlot,
      latest ? h('p', {}, h('button', { type: 'button', class: 'button link', onclick: () => app.go('job', { id: latest.jobId }) },
        `${t('avatar.latestJob')}: ${t(`job.${latest.status}`)}`)) : null,
      renameForm(app, avatar, (name) => { title.textContent = name; }),
      confirmButton({ label: t('avatar.delete'), question: t('avatar.deleteConfirm'), yes: t('avatar.deleteYes'), action: async () => {
        try {
          await app.api.deleteAvatar(avatar.id);
          app.home();
          app.say(t('avatar.deleted'), 'success');
        } catch (err) { app.fail(err, 'avatar'); }
      } }));
    update();
  }

  let plan = null;
  load();
  return () => { alive = false; if (plan) plan.stop(); };
}

function refItem(app, avatarId, ref, n, changed) {
  // The whole photo shows (no crop), its delete button under it: never over the face.
  const li = h('li', { class: 'ref', 'data-testid': 'reference-item', 'data-ref-id': ref.id },
    h('img', { src: ref.url, alt: t('avatar.selfieAlt', { n }), loading: 'lazy', decoding: 'async', width: '150', height: '200' }));
  li.append(h('button', { type: 'button', class: 'button small ref-delete', 'aria-label': t('avatar.deleteSelfie', { n }), onclick: async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    try {
      await app.api.deleteReference(avatarId, ref.id);
      li.remove();
      changed();
    } catch (err) {
      button.disabled = false;
      app.fail(err, 'upload');
    }
  } }, t('avatar.deleteShort')));
  return li;
}

/** Rename (PATCH /api/avatars/{id}): a labelled field behind a "Rename" disclosure. */
function renameForm(app, avatar, renamed) {
  const id = uid('avatar-name');
  const input = h('input', { id, type: 'text', name: 'name', required: true, maxlength: '100', autocomplete: 'off', value: avatar.name });
  const error = inlineError();
  const save = h('button', { type: 'submit', class: 'button secondary' }, t('avatar.renameSave'));
  const box = h('details', { class: 'rename' }, h('summary', { class: 'button link' }, t('avatar.rename')),
    h('form', { class: 'field', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name) { error.set(t('avatar.nameEmpty')); input.setAttribute('aria-invalid', 'true'); input.focus(); return; }
      save.disabled = true;
      try {
        const { avatar: changed } = await app.api.renameAvatar(avatar.id, name);
        avatar.name = (changed && changed.name) || name;
        renamed(avatar.name);
        error.set('');
        input.removeAttribute('aria-invalid');
        box.open = false;
        app.say(t('avatar.renamed'), 'success');
      } catch (err) {
        error.set(errorText(err, 'avatar'));
      } finally { save.disabled = false; }
    } },
    h('label', { for: id }, t('avatar.name')), h('div', { class: 'rename-row' }, input, save), error.el));
  return box;
}
