import { createInProcessBus } from '@kiln/bus';
import { KilnError } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import {
  busClient,
  busSubject,
  catalogPb,
  devicesPb,
  encode,
  firmwarePb,
  firmwareWorkerPb,
  logStorePb,
  remotePb,
  serveBus,
  systemPb,
  type BusImplementation,
} from '../src/index.js';

/** Every subject a bus service method lives on, method key → subject. */
const subjectsOf = (definition: Parameters<typeof busSubject>[0], scope?: string) =>
  Object.fromEntries(
    Object.entries(definition.methods)
      .filter(([, m]) => !m.requestStream && !m.responseStream)
      .map(([key]) => [key, busSubject(definition, key as never, scope)]),
  );

describe('bus service subjects (wire contracts: the strings separately running processes use)', () => {
  it('firmware commands: kiln.firmware.<upstream name>', () => {
    expect(subjectsOf(firmwarePb.FirmwareServiceDefinition)).toEqual({
      compile: 'kiln.firmware.compile',
      upload: 'kiln.firmware.upload',
      install: 'kiln.firmware.install',
      installBulk: 'kiln.firmware.install_bulk',
      compileBulk: 'kiln.firmware.compile_bulk',
      clean: 'kiln.firmware.clean',
      resetBuildEnv: 'kiln.firmware.reset_build_env',
      rename: 'kiln.firmware.rename',
      cancel: 'kiln.firmware.cancel',
      clear: 'kiln.firmware.clear',
      getJobs: 'kiln.firmware.get_jobs',
      getJob: 'kiln.firmware.get_job',
      getJobOutput: 'kiln.firmware.get_job_output',
      queueStatus: 'kiln.firmware.queue_status',
      getBinaries: 'kiln.firmware.get_binaries',
      readArtifact: 'kiln.firmware.read_artifact',
    });
  });

  it('the build tree, served by the firmware service: kiln.firmware.<method>', () => {
    expect(subjectsOf(firmwarePb.BuildTreeServiceDefinition)).toEqual({ forgetBuild: 'kiln.firmware.forget_build' });
  });

  it('devices: kiln.devices.<method>', () => {
    expect(subjectsOf(devicesPb.DevicesServiceDefinition)).toEqual({
      list: 'kiln.devices.list',
      getConfig: 'kiln.devices.get_config',
      updateConfig: 'kiln.devices.update_config',
      create: 'kiln.devices.create',
      delete: 'kiln.devices.delete',
    });
  });

  it('offloader and remote-job commands: kiln.firmware.offloader.<upstream name>', () => {
    expect(subjectsOf(firmwarePb.RemoteJobServiceDefinition)).toEqual({
      submitJob: 'kiln.firmware.offloader.submit_job',
      cancelJob: 'kiln.firmware.offloader.cancel_job',
      downloadArtifacts: 'kiln.firmware.offloader.download_artifacts',
    });
    expect(subjectsOf(remotePb.OffloaderServiceDefinition)).toEqual({
      getOffloaderSettings: 'kiln.firmware.offloader.get_offloader_settings',
      setOffloaderSettings: 'kiln.firmware.offloader.set_offloader_settings',
      previewPair: 'kiln.firmware.offloader.preview_pair',
      requestPair: 'kiln.firmware.offloader.request_pair',
      unpair: 'kiln.firmware.offloader.unpair',
      setPairingEnabled: 'kiln.firmware.offloader.set_pairing_enabled',
      editPairingEndpoint: 'kiln.firmware.offloader.edit_pairing_endpoint',
    });
  });

  it('receiver control: kiln.receiver.<upstream name>', () => {
    expect(subjectsOf(remotePb.ReceiverControlServiceDefinition)).toEqual({
      getIdentity: 'kiln.receiver.get_identity',
      setPairingWindow: 'kiln.receiver.set_pairing_window',
      approvePeer: 'kiln.receiver.approve_peer',
      removePeer: 'kiln.receiver.remove_peer',
      rotateIdentity: 'kiln.receiver.rotate_identity',
    });
  });

  it('log store: the unary methods of its gRPC service (CloseLog on kiln.logstore.close)', () => {
    expect(subjectsOf(logStorePb.LogStoreServiceDefinition)).toEqual({
      append: 'kiln.logstore.append',
      closeLog: 'kiln.logstore.close',
      read: 'kiln.logstore.read',
      delete: 'kiln.logstore.delete',
      list: 'kiln.logstore.list',
    });
  });

  it('catalog: kiln.catalog.<upstream command, / → .>', () => {
    expect(subjectsOf(catalogPb.CatalogServiceDefinition)).toEqual({
      getComponents: 'kiln.catalog.components.get_components',
      getComponentBodies: 'kiln.catalog.components.get_component_bodies',
      getCategories: 'kiln.catalog.components.get_categories',
      getIntegrationDocs: 'kiln.catalog.components.get_integration_docs',
      getPinRegistryModes: 'kiln.catalog.components.get_pin_registry_modes',
      getBoards: 'kiln.catalog.boards.get_boards',
      getBoard: 'kiln.catalog.boards.get_board',
      getCompatibleBoards: 'kiln.catalog.boards.get_compatible_boards',
      getAutomations: 'kiln.catalog.automations.get',
      getAutomationBodies: 'kiln.catalog.automations.get_bodies',
      getInfo: 'kiln.catalog.info',
    });
  });

  it('compile workers and the supervisor: scoped by a worker id, a job id, a service name', () => {
    expect(subjectsOf(firmwareWorkerPb.WorkerServiceDefinition, 'w-1')).toEqual({ run: 'kiln.firmware.worker.w-1.run', cancel: 'kiln.firmware.worker.w-1.cancel' });
    expect(subjectsOf(firmwareWorkerPb.WorkerJobServiceDefinition, 'j1')).toEqual({ output: 'kiln.firmware.worker.job.j1.output', exited: 'kiln.firmware.worker.job.j1.exited' });
    expect(subjectsOf(systemPb.ServiceControlServiceDefinition, 'logstore')).toEqual({ control: 'kiln.system.logstore.control' });
    expect(() => busClient(createInProcessBus(), firmwareWorkerPb.WorkerServiceDefinition)).toThrow(/needs a scope/);
    expect(() => busClient(createInProcessBus(), firmwarePb.FirmwareServiceDefinition, { scope: 'x' })).toThrow(/takes no scope/);
  });
});

describe('busClient and serveBus', () => {
  const receiver = (overrides: Partial<BusImplementation<remotePb.ReceiverControlServiceDefinition>> = {}): BusImplementation<remotePb.ReceiverControlServiceDefinition> => {
    const identity = (open: boolean): remotePb.GetIdentityResponse => ({ dashboardId: 'd', name: 'n', fingerprint: 'f', address: '', pairingOpen: open, pairingClosesAtMs: 0, peers: [] });
    return {
      getIdentity: () => identity(false),
      setPairingWindow: async (r) => identity(r.open),
      approvePeer: async (r) => ({ peer: { ...remotePb.Peer.decode(new Uint8Array(0)), dashboardId: r.peer } }),
      removePeer: async () => ({ removed: true }),
      rotateIdentity: () => identity(false),
      ...overrides,
    };
  };

  it('a call reaches the implementation with its request and resolves to its reply', async () => {
    const bus = createInProcessBus();
    const subs = serveBus(bus, remotePb.ReceiverControlServiceDefinition, receiver());
    const client = busClient(bus, remotePb.ReceiverControlServiceDefinition);
    expect((await client.setPairingWindow({ open: true, timeoutS: 5 })).pairingOpen).toBe(true);
    expect((await client.approvePeer({ peer: 'p1' })).peer?.dashboardId).toBe('p1');
    expect(subs).toHaveLength(5);
    subs.forEach((s) => s.unsubscribe());
    await bus.close();
  });

  it('fields a request leaves out go out at their proto defaults', async () => {
    const bus = createInProcessBus();
    const seen: remotePb.SetPairingWindowRequest[] = [];
    serveBus(bus, remotePb.ReceiverControlServiceDefinition, receiver({ setPairingWindow: (r) => (seen.push(r), receiver().getIdentity({})) }));
    await busClient(bus, remotePb.ReceiverControlServiceDefinition).setPairingWindow({ open: true, timeoutS: undefined });
    expect(seen).toEqual([{ open: true, timeoutS: 0 }]);
    await bus.close();
  });

  it("an implementation's KilnError reaches the caller with its code and details", async () => {
    const bus = createInProcessBus();
    serveBus(bus, remotePb.ReceiverControlServiceDefinition, receiver({ removePeer: async (r) => { throw new KilnError('not_found', `no peer ${r.peer}`, { peer: r.peer }); } }));
    const client = busClient(bus, remotePb.ReceiverControlServiceDefinition);
    await expect(client.removePeer({ peer: 'x' })).rejects.toMatchObject({ code: 'not_found', message: 'no peer x', details: { peer: 'x' } });
    await bus.close();
  });

  it('undecodable request bytes are refused as invalid_message naming the subject', async () => {
    const bus = createInProcessBus();
    serveBus(bus, remotePb.ReceiverControlServiceDefinition, receiver());
    const subject = busSubject(remotePb.ReceiverControlServiceDefinition, 'approvePeer');
    await expect(bus.request(subject, new Uint8Array([0xff, 0xff, 0xff]))).rejects.toMatchObject({ code: 'invalid_message', details: { subject } });
    expect(encode(remotePb.ApprovePeerRequest, { peer: 'a' }).length).toBeGreaterThan(0);
    await bus.close();
  });

  it('a call waits for its deadline, the client default or its own', async () => {
    const bus = createInProcessBus();
    serveBus(bus, remotePb.ReceiverControlServiceDefinition, receiver({ getIdentity: () => new Promise(() => undefined) }));
    const client = busClient(bus, remotePb.ReceiverControlServiceDefinition, { timeoutMs: 20 });
    await expect(client.getIdentity({})).rejects.toMatchObject({ code: 'timeout', details: { timeoutMs: 20 } });
    await expect(client.getIdentity({}, { timeoutMs: 30 })).rejects.toMatchObject({ code: 'timeout', details: { timeoutMs: 30 } });
    await bus.close();
  });
});
