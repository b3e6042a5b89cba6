/** Entry point: header with connection state, hash routing, one view at a time. */
import './style.css';
import './layout.css';
import './coverage.css';
import { App, type View } from './app.js';
import { Dashboard } from './dashboard.js';
import { TargetView } from './targetview.js';
import { FileView } from './fileview.js';
import { parseRoute, targetHref, type Route } from './router.js';
import { el, setText } from './format.js';
import { Shortcuts } from './shortcuts.js';

const app = new App();
const header = el('header', 'top');
const brand = el('a', 'brand', 'covd');
brand.href = '#/';
const crumbs = el('nav', 'crumbs');
crumbs.setAttribute('aria-label', 'Breadcrumb');
const conn = el('button', 'conn');
conn.type = 'button';
conn.setAttribute('aria-live', 'polite');
conn.addEventListener('click', () => app.link.retryNow());
const connDot = el('span', 'dot');
const connText = el('span', 'conn-text');
conn.append(connDot, connText);
const shortcuts = new Shortcuts();
header.append(brand, crumbs, shortcuts.button, conn);
const banner = el('div', 'banner');
banner.hidden = true;
const outlet = el('div', 'outlet');
document.body.append(header, banner, outlet);

let route: Route = { view: 'dashboard' };

function renderConn(): void {
  const s = app.linkState;
  conn.className = `conn conn-${s}`;
  conn.dataset.state = s;
  let text: string;
  if (s === 'open') text = 'live';
  else if (s === 'connecting') text = 'connecting…';
  else {
    const secs = Math.max(0, Math.ceil((app.link.retryAt - Date.now()) / 1000));
    text = app.linkDetail === 'connecting…' ? 'reconnecting…' : `offline: ${app.linkDetail}; retry in ${secs}s`;
  }
  setText(connText, text);
  conn.title = s === 'open' ? `connected to ${app.serverName || 'covd'}` : 'click to retry now';
}
app.onLinkState = renderConn;
app.onTargetList = () => renderCrumbs();
app.onError = (msg) => {
  setText(banner, msg);
  banner.hidden = false;
  setTimeout(() => (banner.hidden = true), 10_000);
};

function renderCrumbs(): void {
  const parts: (string | [string, string])[] = [];
  if (route.view !== 'dashboard') {
    const t = app.targets.get(route.id);
    parts.push([t?.name ?? route.id, targetHref(route.id)]);
    if (route.view === 'file') parts.push(route.path.split('/').pop() ?? route.path);
  }
  const nodes: Node[] = [];
  for (const p of parts) {
    nodes.push(el('span', 'sep', '›'));
    if (typeof p === 'string') nodes.push(el('span', 'crumb', p));
    else {
      const a = el('a', 'crumb', p[0]);
      a.href = p[1];
      nodes.push(a);
    }
  }
  const key = parts.map((p) => (typeof p === 'string' ? p : p.join('|'))).join('/');
  if (crumbs.dataset.key !== key) {
    crumbs.dataset.key = key;
    crumbs.replaceChildren(...nodes);
  }
}

function mount(v: View): void {
  app.view?.destroy();
  app.view = v;
  outlet.replaceChildren(v.root);
}

function navigate(): void {
  const next = parseRoute(location.hash);
  const cur = app.view;
  // Same file, new line: just scroll (keeps the editor and its state).
  if (next.view === 'file' && route.view === 'file' && cur instanceof FileView && next.id === route.id && cur.sameFile(next.path)) {
    route = next;
    cur.showLine(next.line);
    return;
  }
  route = next;
  if (next.view === 'dashboard') {
    app.follow(null);
    mount(new Dashboard(app));
    document.title = 'covd';
  } else {
    const model = app.follow(next.id)!;
    if (next.view === 'target') {
      mount(new TargetView(app, model));
      document.title = `${model.info.name} · covd`;
    } else {
      mount(new FileView(app, model, next.path, next.line));
      document.title = `${next.path.split('/').pop()} · ${model.info.name} · covd`;
    }
  }
  renderCrumbs();
}

window.addEventListener('hashchange', navigate);
const origOnTargets = () => renderCrumbs();
setInterval(() => {
  app.view?.tick?.();
  if (app.linkState !== 'open') renderConn();
  origOnTargets();
}, 1000);

navigate();
renderConn();
app.start();

// For tests and benchmarks: a read-only peek at the state (never used by the page itself).
(window as unknown as { covd: unknown }).covd = {
  app,
  route: () => route,
  link: () => ({ state: app.link.state, opens: app.link.opens, frames: app.link.frames }),
  source: (withStates = false) => (app.view instanceof FileView ? app.view.probe(withStates) : null),
};
