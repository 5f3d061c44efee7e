import { useEffect, useState } from 'preact/hooks';
import { act, store } from '../session.js';
import { useStore, type Peer } from '../state.js';
import { countdown, formatPin, time } from './format.js';

const DEFAULT_WINDOW_S = 300;

/** Seconds until the window closes by itself, ticking locally (the closing itself arrives as an event). */
function useRemaining(closesAt: string | null): number | undefined {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!closesAt) return;
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, [closesAt]);
  return closesAt ? new Date(closesAt).getTime() - now : undefined;
}

/** The receiver hosted with this gateway: its identity, pairing window, offloaders, key rotation. */
export function ReceiverSection() {
  // Read once with subscribe_events' snapshot, then kept current by its remote_build_* events.
  const {
    receiver: { value: identity, error },
  } = useStore(store);

  if (error && !identity) {
    return (
      <section data-testid="receiver" data-state="absent">
        <h2>This host as a receiver</h2>
        <p data-testid="receiver-error">
          {error.code === 'unavailable' ? 'This host runs no remote build receiver' : 'The receiver did not answer'}: <span class="muted">{error.message}</span>
        </p>
        {error.code === 'unavailable' && (
          <p class="muted">
            To compile for other Kiln installations, host one with the gateway: <code>kiln supervise --services logstore,catalog,firmware,gateway,receiver</code>.
          </p>
        )}
      </section>
    );
  }
  if (!identity) {
    return (
      <section data-testid="receiver" data-state="loading">
        <h2>This host as a receiver</h2>
        <p class="muted">loading…</p>
      </section>
    );
  }
  const pending = identity.peers.filter((p) => p.status === 'pending');
  const approved = identity.peers.filter((p) => p.status === 'approved');
  return (
    <section data-testid="receiver" data-state="present">
      <h2>This host as a receiver</h2>
      <dl class="facts">
        <dt>Name</dt>
        <dd data-testid="receiver-name">{identity.name}</dd>
        <dt>Dashboard id</dt>
        <dd data-testid="receiver-dashboard-id">
          <code>{identity.dashboard_id}</code>
        </dd>
        <dt>Pin (SHA-256)</dt>
        <dd>
          <code class="pin" data-testid="receiver-pin" data-pin={identity.pin_sha256}>
            {formatPin(identity.pin_sha256)}
          </code>
          <div class="muted">An offloader pairing with this receiver must show exactly this pin.</div>
        </dd>
        <dt>Address</dt>
        <dd data-testid="receiver-address" data-bound={String(identity.listener_bound)}>
          {identity.listener_bound ? <code>{identity.address}</code> : <span class="error">not listening</span>}
        </dd>
      </dl>
      <PairingWindow open={identity.pairing_open} closesAt={identity.pairing_closes_at} />
      <h3>Waiting for approval</h3>
      <PeerTable peers={pending} testid="pending-peers" empty={identity.pairing_open ? 'No request yet: run the pairing on the offloader.' : 'None.'} />
      <h3>Approved offloaders</h3>
      <PeerTable peers={approved} testid="approved-peers" empty="None." />
      <RotateIdentity />
    </section>
  );
}

// Actions only ask: what they change comes back as subscribe_events' remote_build_* events.

function PairingWindow({ open, closesAt }: { open: boolean; closesAt: string | null }) {
  const [timeout, setTimeoutS] = useState(String(DEFAULT_WINDOW_S));
  const remaining = useRemaining(open ? closesAt : null);
  const setWindow = (args: Record<string, unknown>) => act('remote_build/set_pairing_window', args);
  return (
    <div class="pairing-window" data-testid="pairing-window" data-state={open ? 'open' : 'closed'}>
      <h3>Pairing window</h3>
      {open ? (
        <p>
          <span class="status running">open</span>{' '}
          {remaining !== undefined && (
            <span data-testid="window-countdown">
              closes by itself in {countdown(remaining)}
            </span>
          )}{' '}
          <button onClick={() => void setWindow({ open: false })}>Close</button>
        </p>
      ) : (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void setWindow({ open: true, timeout: Number(timeout) });
          }}
        >
          <span class="status queued">closed</span>
          <label>
            for <input type="number" min={1} max={86_400} size={6} aria-label="pairing window seconds" value={timeout} onInput={(e) => setTimeoutS(e.currentTarget.value)} /> s
          </label>
          <button type="submit">Open</button>
        </form>
      )}
    </div>
  );
}

function PeerTable({ peers, testid, empty }: { peers: Peer[]; testid: string; empty: string }) {
  if (peers.length === 0) return <p class="muted" data-testid={testid}>{empty}</p>;
  const run = (command: string, peer: Peer) => act(command, { dashboard_id: peer.dashboard_id });
  return (
    <table data-testid={testid}>
      <thead>
        <tr>
          <th>Offloader</th>
          <th>Pin (compare with the offloader)</th>
          <th>{peers[0]!.status === 'pending' ? 'Requested' : 'Approved'}</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {peers.map((p) => (
          <tr key={p.dashboard_id} data-peer={p.dashboard_id}>
            <td>
              {p.name}
              <div class="muted">
                <code>{p.dashboard_id}</code>
              </div>
            </td>
            <td>
              <code class="pin" data-testid="peer-pin" data-pin={p.pin_sha256}>
                {formatPin(p.pin_sha256)}
              </code>
            </td>
            <td>{time(p.status === 'pending' ? p.requested_at : p.approved_at)}</td>
            <td class="actions">
              {p.status === 'pending' ? (
                <>
                  <button onClick={() => void run('remote_build/approve_peer', p)}>Approve</button> <button onClick={() => void run('remote_build/remove_peer', p)}>Reject</button>
                </>
              ) : (
                <button onClick={() => void run('remote_build/remove_peer', p)}>Remove</button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Rotation invalidates every offloader's pin, so it takes a second, explicit click. */
function RotateIdentity() {
  const [confirming, setConfirming] = useState(false);
  const rotate = async () => {
    setConfirming(false);
    await act('remote_build/rotate_identity');
  };
  return (
    <div class="rotate" data-testid="rotate">
      <h3>Identity</h3>
      {confirming ? (
        <p class="confirm">
          A new key and pin: every paired offloader must confirm the new pin (pair again) before it can build here.{' '}
          <button onClick={() => void rotate()}>Rotate now</button> <button onClick={() => setConfirming(false)}>Keep the current key</button>
        </p>
      ) : (
        <button onClick={() => setConfirming(true)}>Rotate identity…</button>
      )}
    </div>
  );
}
