import { useEffect, useState } from 'preact/hooks';
import { login, store } from '../session.js';
import { useStore } from '../state.js';
import { CatalogPage, ComponentPage } from './catalog.js';
import { DevicesPage } from './devices.js';
import { JobPage } from './job.js';
import { RemotePage } from './remote.js';

/** Hash routes: `#/` devices and lanes, `#/jobs/<id>` one job's log, `#/catalog[/<component id>]`, `#/remote` pairing. */
type Route = { page: 'devices' } | { page: 'job'; id: string } | { page: 'catalog' } | { page: 'component'; id: string } | { page: 'remote' };

function parseRoute(hash: string): Route {
  const [, page, id] = hash.replace(/^#/, '').split('/');
  if (page === 'jobs' && id) return { page: 'job', id: decodeURIComponent(id) };
  if (page === 'catalog') return id ? { page: 'component', id: decodeURIComponent(id) } : { page: 'catalog' };
  if (page === 'remote') return { page: 'remote' };
  return { page: 'devices' };
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'job':
      return <JobPage id={route.id} />;
    case 'catalog':
      return <CatalogPage />;
    case 'component':
      return <ComponentPage id={route.id} />;
    case 'remote':
      return <RemotePage />;
    default:
      return <DevicesPage />;
  }
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

const CONNECTION_LABEL = { connecting: 'connecting…', open: 'live', reconnecting: 'reconnecting…' } as const;

export function App() {
  const state = useStore(store);
  const route = useRoute();
  return (
    <>
      <header>
        <a class="brand" href="#/">Kiln</a>
        <nav>
          <a href="#/" class={route.page === 'devices' || route.page === 'job' ? 'active' : ''}>Devices</a>
          <a href="#/catalog" class={route.page === 'catalog' || route.page === 'component' ? 'active' : ''}>Catalog</a>
          <a href="#/remote" class={route.page === 'remote' ? 'active' : ''}>Remote builds</a>
        </nav>
        <span class={`connection ${state.connection}`} data-testid="connection" data-state={state.connection} title="WebSocket connection">
          {CONNECTION_LABEL[state.connection]}
        </span>
      </header>
      {state.notice && (
        <p class="notice" role="alert" data-testid="notice">
          {state.notice} <button onClick={() => store.set({ notice: undefined })}>dismiss</button>
        </p>
      )}
      <main>{state.needLogin ? <Login error={state.loginError} /> : <Page route={route} />}</main>
    </>
  );
}

function Login({ error }: { error: string | undefined }) {
  const [password, setPassword] = useState('');
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        void login(password);
      }}
    >
      <h2>Log in</h2>
      <input type="password" placeholder="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} autoFocus />
      <button type="submit">Log in</button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}
