// A group of radio choices (tiers, styles, avatars): native radios inside their labels, so
// arrows move between them, each label names its radio, and the whole label is the target
// (and carries the test id: `tier-starter:has(input:checked)` is the chosen set).

import { h, uid } from '../dom.js';

export function choices({ legend, name, items, selected, onChange }) {
  const group = uid(name);
  return h('fieldset', { class: 'choices' },
    h('legend', {}, legend),
    items.map((item) => {
      const descId = uid(`${name}-desc`);
      return h('label', { class: 'choice', 'data-testid': item.testid },
        h('input', { type: 'radio', name: group, value: item.value, checked: String(item.value) === String(selected),
          'aria-describedby': item.sub ? descId : null, onchange: (e) => { if (e.target.checked) onChange(item.value); } }),
        h('span', { class: 'choice-main' }, h('span', { class: 'choice-title' }, item.title),
          item.sub ? h('span', { class: 'choice-sub', id: descId }, item.sub) : null),
        item.aside ? h('span', { class: 'choice-aside' }, item.aside) : null);
    }));
}
