import { useEffect, useRef, useState } from 'preact/hooks';
import { socket, store } from '../session.js';
import { useStore } from '../state.js';

/** A catalog entry as components/get_components lists it. */
interface Component {
  id: string;
  name: string;
  description: string;
  category: string;
  docs_url?: string;
  dependencies?: string[];
  multi_conf?: boolean;
  provides?: string[];
  supported_platforms?: string[];
}

interface ConfigEntry {
  key: string;
  type: string;
  label: string;
  description?: string;
  required?: boolean;
  default_value?: unknown;
  options?: string[];
  advanced?: boolean;
  config_entries?: ConfigEntry[];
}

const PAGE = 50;
/** Wait for a pause in typing before asking the server. */
const SEARCH_DEBOUNCE_MS = 150;

/** Search the component catalog (text + category), page through the results, open one. */
export function CatalogPage() {
  const { synced } = useStore(store);
  const [query, setQuery] = useState('');
  const [category, setCategory] = useState('');
  const [offset, setOffset] = useState(0);
  const [categories, setCategories] = useState<Array<{ category: string; count: number }>>([]);
  const [results, setResults] = useState<{ components: Component[]; total: number } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const latest = useRef(0);

  useEffect(() => {
    if (!synced) return;
    socket.call<{ categories: Array<{ category: string; count: number }> }>('components/get_categories').then(
      (r) => setCategories(r.categories),
      (err: Error) => setError(err.message),
    );
  }, [synced]);

  useEffect(() => {
    if (!synced) return;
    const request = ++latest.current;
    const timer = setTimeout(() => {
      const args = { ...(query.trim() ? { query: query.trim() } : {}), ...(category ? { category } : {}), offset, limit: PAGE };
      socket.call<{ components: Component[]; total: number }>('components/get_components', args).then(
        // Only the answer to the newest request is shown: typing fast never flashes older results.
        (r) => request === latest.current && (setResults(r), setError(undefined)),
        (err: Error) => request === latest.current && setError(err.message),
      );
    }, SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [synced, query, category, offset]);

  return (
    <section data-testid="catalog">
      <h2>Catalog</h2>
      <form class="inline" onSubmit={(e) => e.preventDefault()}>
        <input
          type="search"
          placeholder="search components"
          aria-label="search components"
          value={query}
          onInput={(e) => (setQuery(e.currentTarget.value), setOffset(0))}
        />
        <select aria-label="category" value={category} onChange={(e) => (setCategory(e.currentTarget.value), setOffset(0))}>
          <option value="">all categories</option>
          {categories.map((c) => (
            <option key={c.category} value={c.category}>
              {c.category} ({c.count})
            </option>
          ))}
        </select>
      </form>
      {error && <p class="error">{error}</p>}
      {results && (
        <>
          <p class="muted" data-testid="catalog-total">
            {results.total} component{results.total === 1 ? '' : 's'}
            {results.total > PAGE && ` · ${offset + 1}–${Math.min(offset + PAGE, results.total)}`}
          </p>
          <ul class="components" data-testid="catalog-results">
            {results.components.map((c) => (
              <li key={c.id} data-component={c.id}>
                <a href={`#/catalog/${encodeURIComponent(c.id)}`}>
                  <strong>{c.name}</strong>
                </a>{' '}
                <span class="muted">
                  {c.id} · {c.category}
                </span>
                <div>{c.description}</div>
              </li>
            ))}
          </ul>
          {results.total > PAGE && (
            <p>
              <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
                Previous
              </button>{' '}
              <button disabled={offset + PAGE >= results.total} onClick={() => setOffset(offset + PAGE)}>
                Next
              </button>
            </p>
          )}
        </>
      )}
    </section>
  );
}

/** One component: what it is and its config entries (nested ones indented). */
export function ComponentPage({ id }: { id: string }) {
  const { synced } = useStore(store);
  const [body, setBody] = useState<(Component & { config_entries?: ConfigEntry[] }) | null | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    if (!synced) return;
    socket.call<{ components: Array<Component & { config_entries?: ConfigEntry[] }> }>('components/get_component_bodies', { component_ids: [id] }).then(
      (r) => setBody(r.components[0] ?? null),
      (err: Error) => setError(err.message),
    );
  }, [synced, id]);
  return (
    <section data-testid="component" data-component={id}>
      <p>
        <a href="#/catalog">← catalog</a>
      </p>
      {error && <p class="error">{error}</p>}
      {body === null && <p class="error">No component {JSON.stringify(id)} in the catalog.</p>}
      {body && (
        <>
          <h2>
            {body.name} <span class="muted">{body.id}</span>
          </h2>
          <p>{body.description}</p>
          <p class="meta">
            {body.category}
            {body.supported_platforms?.length ? ` · platforms: ${body.supported_platforms.join(', ')}` : ''}
            {body.dependencies?.length ? ` · needs: ${body.dependencies.join(', ')}` : ''}
            {body.multi_conf ? ' · can be configured more than once' : ''}
            {/* A plain link: the page itself never loads anything from outside Kiln. */}
            {body.docs_url && (
              <>
                {' · '}
                <a href={body.docs_url} target="_blank" rel="noreferrer noopener">
                  documentation
                </a>
              </>
            )}
          </p>
          <h3>Configuration</h3>
          {body.config_entries?.length ? <Entries entries={body.config_entries} /> : <p class="muted">No configuration entries.</p>}
        </>
      )}
    </section>
  );
}

function Entries({ entries }: { entries: ConfigEntry[] }) {
  return (
    <ul class="entries" data-testid="config-entries">
      {entries.map((e) => (
        <li key={e.key} data-key={e.key}>
          <code>{e.key}</code> <span class="muted">{e.type}</span>
          {e.required && <span class="required"> required</span>}
          {e.advanced && <span class="muted"> · advanced</span>}
          {e.default_value !== undefined && <span class="muted"> · default {JSON.stringify(e.default_value)}</span>}
          {e.options?.length ? <span class="muted"> · one of {e.options.join(', ')}</span> : null}
          {e.description && <div class="muted">{e.description}</div>}
          {e.config_entries?.length ? <Entries entries={e.config_entries} /> : null}
        </li>
      ))}
    </ul>
  );
}
