// A few DOM helpers: elements are built with h(), never from HTML strings, so user text is always text.

/** h("button", {class: "x", onclick: f, "aria-label": "..."}, "text", child, ...) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace the children of el. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Set a text node's content only when it changed (keeps selection and avoids layout work). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Keep container's children in the order of items, reusing one element per key: elements are created once
 * (create(item)), updated in place (update(el, item)) and moved only when out of place, so focus, an open
 * edit box and text selections survive updates.
 */
export function syncList(container, items, key, create, update) {
  const active = document.activeElement;
  const existing = new Map();
  for (const child of container.children) existing.set(child.dataset.key, child);
  const wanted = new Set();
  items.forEach((item, index) => {
    const k = key(item);
    wanted.add(k);
    let el = existing.get(k);
    if (!el) {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    if (container.children[index] !== el) container.insertBefore(el, container.children[index] || null);
  });
  for (const [k, el] of existing) if (!wanted.has(k)) el.remove();
  if (active && active.isConnected && document.activeElement !== active) active.focus({ preventScroll: true });
}

let idCounter = 0;
export function uniqueId(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

export function formatTime(timestamp) {
  const date = new Date(timestamp);
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { month: "short", day: "numeric" }) +
        " " +
        date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
