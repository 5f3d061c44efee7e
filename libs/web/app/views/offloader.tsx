import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../client.js';
import { act, socket, store } from '../session.js';
import { useStore, type OffloaderSettings, type Pairing, type VersionPolicy } from '../state.js';
import { formatPin, time } from './format.js';

/** What remote_build/preview_pair tells about a receiver before anything is sent to it. */
interface Preview {
  pin_sha256: string;
  dashboard_id: string;
  name: string;
  kiln_version: string;
  protocol_version: number;
  pairing_open: boolean;
  requires_pairing_key: boolean;
}

const DEFAULT_RECEIVER_PORT = '7054';

const POLICY_LABEL: Record<VersionPolicy, string> = {
  any: 'any version',
  release: 'same release (major.minor)',
  exact: 'exactly this version',
};

/** This host as an offloader: its settings, the receivers it paired with, and pairing a new one. */
export function OffloaderSection() {
  // Read once with subscribe_events' snapshot, then kept current by remote_build_offloader_changed.
  const {
    offloader: { value: settings, error },
  } = useStore(store);
  // The snapshot leaves out an identity not created yet (creating a key is not free for an idle host):
  // showing this section is what asks for it, once.
  const missingIdentity = settings !== undefined && !settings.identity;
  useEffect(() => {
    if (missingIdentity) store.onMissingRemote('offloader');
  }, [missingIdentity]);

  if (error && !settings) {
    return (
      <section data-testid="offloader" data-state="absent">
        <h2>This host as an offloader</h2>
        <p data-testid="offloader-error">
          Offloading is not available here: <span class="muted">{error.message}</span>
        </p>
      </section>
    );
  }
  if (!settings) {
    return (
      <section data-testid="offloader" data-state="loading">
        <h2>This host as an offloader</h2>
        <p class="muted">loading…</p>
      </section>
    );
  }
  // Actions only ask: what they change comes back as remote_build_offloader_changed.
  const change = (patch: Partial<OffloaderSettings>) => act('remote_build/set_offloader_settings', patch);
  return (
    <section data-testid="offloader" data-state="present">
      <h2>This host as an offloader</h2>
      {settings.identity && (
        <dl class="facts">
          <dt>This host's pin</dt>
          <dd>
            <code class="pin" data-testid="offloader-pin" data-pin={settings.identity.pin_sha256}>
              {formatPin(settings.identity.pin_sha256)}
            </code>
            <div class="muted">A receiver lists this pin when this host asks to pair: approve the request there only if the pins match.</div>
          </dd>
          <dt>Name</dt>
          <dd data-testid="offloader-name">{settings.identity.name}</dd>
        </dl>
      )}
      <div class="settings" data-testid="offloader-settings">
        <label>
          <input type="checkbox" checked={settings.remote_builds_enabled} onChange={(e) => void change({ remote_builds_enabled: e.currentTarget.checked })} /> Send compiles to
          paired receivers
        </label>
        <label>
          <input type="checkbox" checked={settings.include_local_in_pool} onChange={(e) => void change({ include_local_in_pool: e.currentTarget.checked })} /> This host compiles
          too while the receivers are busy
        </label>
        <label>
          Use receivers running{' '}
          <select aria-label="version match policy" value={settings.version_match_policy} onChange={(e) => void change({ version_match_policy: e.currentTarget.value as VersionPolicy })}>
            {(Object.keys(POLICY_LABEL) as VersionPolicy[]).map((p) => (
              <option key={p} value={p}>
                {POLICY_LABEL[p]}
              </option>
            ))}
          </select>
        </label>
      </div>
      <h3>Paired receivers</h3>
      <PairingTable pairings={settings.pairings} />
      <AddReceiver pairings={settings.pairings} />
    </section>
  );
}

function PairingTable({ pairings }: { pairings: Pairing[] }) {
  const [editing, setEditing] = useState<string | undefined>(undefined);
  if (pairings.length === 0) return <p class="muted" data-testid="pairings">None: add one below.</p>;
  const run = (command: string, args: Record<string, unknown>) => act(command, args);
  return (
    <table data-testid="pairings">
      <thead>
        <tr>
          <th>Receiver</th>
          <th>Pin</th>
          <th>State</th>
          <th>Paired</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {pairings.flatMap((p) => [
          <tr key={p.pin_sha256} data-pairing={p.pin_sha256} data-enabled={String(p.enabled)}>
            <td>
              {p.label}
              <div class="muted">
                <code>
                  {p.hostname}:{p.port}
                </code>
              </div>
            </td>
            <td>
              <code class="pin">{formatPin(p.pin_sha256)}</code>
            </td>
            <td data-testid="pairing-state">{!p.enabled ? 'disabled' : p.eligible ? 'in use' : 'enabled; not eligible now (not connected, or its version is not allowed)'}</td>
            <td>{time(p.paired_at)}</td>
            <td class="actions">
              <button onClick={() => void run('remote_build/set_pairing_enabled', { pin_sha256: p.pin_sha256, enabled: !p.enabled })}>{p.enabled ? 'Disable' : 'Enable'}</button>{' '}
              <button onClick={() => setEditing(editing === p.pin_sha256 ? undefined : p.pin_sha256)}>Edit address</button>{' '}
              <button onClick={() => void run('remote_build/unpair', { pin_sha256: p.pin_sha256 })}>Unpair</button>
            </td>
          </tr>,
          editing === p.pin_sha256 && (
            <tr key={`${p.pin_sha256}-edit`} data-edit-address={p.pin_sha256}>
              <td colSpan={5}>
                <EditAddress pairing={p} done={() => setEditing(undefined)} />
              </td>
            </tr>
          ),
        ])}
      </tbody>
    </table>
  );
}

/**
 * Move a pairing to the receiver's new address (it got another IP or port). The host probes the new
 * address first and keeps the old one unless the receiver there presents this pairing's pin.
 */
function EditAddress({ pairing, done }: { pairing: Pairing; done: () => void }) {
  const [hostname, setHostname] = useState(pairing.hostname);
  const [port, setPort] = useState(String(pairing.port));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  return (
    <form
      class="inline"
      data-testid="edit-address"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          await socket.call('remote_build/edit_pairing_endpoint', { pin_sha256: pairing.pin_sha256, hostname: hostname.trim(), port: Number(port) });
          done();
        } catch (err) {
          setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
        } finally {
          setBusy(false);
        }
      }}
    >
      <span class="muted">New address of {pairing.label} (it must present the same pin):</span>{' '}
      <input aria-label="new receiver host" value={hostname} onInput={(e) => setHostname(e.currentTarget.value)} required />
      <input aria-label="new receiver port" type="number" min={1} max={65_535} size={6} value={port} onInput={(e) => setPort(e.currentTarget.value)} required />
      <button type="submit" disabled={busy}>
        Save
      </button>{' '}
      <button type="button" onClick={done}>
        Cancel
      </button>
      {error && <p class="error" data-testid="edit-address-error">{error}</p>}
    </form>
  );
}

type Step =
  | { step: 'address' }
  | { step: 'preview'; hostname: string; port: number; preview: Preview }
  | { step: 'pending'; hostname: string; port: number; preview: Preview };

/**
 * Add a receiver: preview (its pin, fetched without sending anything) → the operator compares the
 * pin with the receiver's own screen → request → wait until the receiver approves. The pairing shows
 * up (remote_build_offloader_changed) once approved, which is what ends the wait.
 */
function AddReceiver({ pairings }: { pairings: Pairing[] }) {
  const [step, setStep] = useState<Step>({ step: 'address' });
  const [hostname, setHostname] = useState('');
  const [port, setPort] = useState(DEFAULT_RECEIVER_PORT);
  const [receiverLabel, setReceiverLabel] = useState('');
  const [offloaderLabel, setOffloaderLabel] = useState('');
  const [pairingKey, setPairingKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  const call = async <T,>(command: string, args: Record<string, unknown>): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      return await socket.call<T>(command, args);
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  const reset = () => (setStep({ step: 'address' }), setError(undefined), setPairingKey(''));

  if (step.step === 'address') {
    return (
      <div class="add-receiver" data-testid="add-receiver" data-step="address">
        <h3>Add a receiver</h3>
        <p class="muted">Open the pairing window on the receiver first (its own Remote builds screen).</p>
        <form
          class="inline"
          onSubmit={async (e) => {
            e.preventDefault();
            const target = { hostname: hostname.trim(), port: Number(port) };
            const preview = await call<Preview>('remote_build/preview_pair', target);
            if (preview) setStep({ step: 'preview', ...target, preview });
          }}
        >
          <input aria-label="receiver host" placeholder="receiver host" value={hostname} onInput={(e) => setHostname(e.currentTarget.value)} required />
          <input aria-label="receiver port" type="number" min={1} max={65_535} size={6} value={port} onInput={(e) => setPort(e.currentTarget.value)} required />
          <button type="submit" disabled={busy}>
            Preview
          </button>
        </form>
        {error && <p class="error" data-testid="add-receiver-error">{error}</p>}
      </div>
    );
  }

  const { preview } = step;
  if (step.step === 'preview') {
    return (
      <div class="add-receiver" data-testid="add-receiver" data-step="preview">
        <h3>
          Add {preview.name} ({step.hostname}:{step.port})
        </h3>
        <dl class="facts">
          <dt>Receiver pin</dt>
          <dd>
            <code class="pin" data-testid="preview-pin" data-pin={preview.pin_sha256}>
              {formatPin(preview.pin_sha256)}
            </code>
            <div class="confirm">Compare it with the pin on the receiver's own screen. A different pin means something else answered: cancel.</div>
          </dd>
          <dt>Dashboard id</dt>
          <dd>
            <code>{preview.dashboard_id}</code>
          </dd>
          <dt>Kiln</dt>
          <dd>{preview.kiln_version}</dd>
          <dt>Pairing window</dt>
          <dd data-testid="preview-window">{preview.pairing_open ? 'open' : preview.requires_pairing_key ? 'closed (a pairing key is armed)' : 'closed: open it on the receiver'}</dd>
        </dl>
        <form
          class="pair-form"
          onSubmit={async (e) => {
            e.preventDefault();
            const args = {
              hostname: step.hostname,
              port: step.port,
              pin_sha256: preview.pin_sha256,
              ...(receiverLabel.trim() ? { receiver_label: receiverLabel.trim() } : {}),
              ...(offloaderLabel.trim() ? { offloader_label: offloaderLabel.trim() } : {}),
              ...(pairingKey.trim() ? { pairing_key: pairingKey.trim() } : {}),
            };
            const answer = await call<{ status: 'approved' | 'pending' }>('remote_build/request_pair', args);
            if (answer) setStep({ ...step, step: 'pending' });
          }}
        >
          <label>
            Name for this receiver <input aria-label="receiver label" placeholder={preview.name} value={receiverLabel} onInput={(e) => setReceiverLabel(e.currentTarget.value)} />
          </label>
          <label>
            Name the receiver shows for this host <input aria-label="offloader label" placeholder="this host's name" value={offloaderLabel} onInput={(e) => setOffloaderLabel(e.currentTarget.value)} />
          </label>
          {preview.requires_pairing_key && (
            <label>
              Pairing key <input aria-label="pairing key" type="password" value={pairingKey} onInput={(e) => setPairingKey(e.currentTarget.value)} />
            </label>
          )}
          <div>
            <button type="submit" disabled={busy}>
              The pins match: request pairing
            </button>{' '}
            <button type="button" onClick={reset}>
              Cancel
            </button>
          </div>
        </form>
        {error && <p class="error" data-testid="add-receiver-error">{error}</p>}
      </div>
    );
  }

  const paired = pairings.some((p) => p.pin_sha256 === preview.pin_sha256);
  return (
    <div class="add-receiver" data-testid="add-receiver" data-step={paired ? 'paired' : 'pending'}>
      <h3>Add {preview.name}</h3>
      {paired ? (
        <p data-testid="pair-status">
          <span class="status completed">paired</span> {preview.name} approved this host; it is listed above.
        </p>
      ) : (
        <p data-testid="pair-status">
          <span class="status running">waiting</span> for approval on {preview.name}: approve it on the receiver's Remote builds screen (it shows this host's pin).
        </p>
      )}
      <button onClick={reset}>{paired ? 'Done' : 'Stop waiting'}</button>
    </div>
  );
}
