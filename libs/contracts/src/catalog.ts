import type { Bus, BusSubscription } from '@kiln/bus';
import type { MessageCodec } from './codec.js';
import * as pb from './gen/kiln/catalog/v1/catalog.js';
import { callRpc, rpcMethod, serveRpc, type RpcMethod } from './rpc.js';

/** `kiln.catalog.<command>`: one request/reply subject per query (command names as upstream's, `/` → `.`). */
export const catalogSubjects = {
  command: (name: string) => `kiln.catalog.${name}`,
} as const;

const query = <Req>(name: string, request: MessageCodec<Req>) => rpcMethod(catalogSubjects.command(name), request, pb.JsonResult);

/** Every catalog query. Replies are the upstream-shaped result object as JSON text (see catalog.proto). */
export const catalogRpc = {
  getComponents: query('components.get_components', pb.GetComponentsRequest),
  getComponentBodies: query('components.get_component_bodies', pb.GetComponentBodiesRequest),
  getCategories: query('components.get_categories', pb.GetCategoriesRequest),
  getIntegrationDocs: query('components.get_integration_docs', pb.GetIntegrationDocsRequest),
  getPinRegistryModes: query('components.get_pin_registry_modes', pb.GetPinRegistryModesRequest),
  getBoards: query('boards.get_boards', pb.GetBoardsRequest),
  getBoard: query('boards.get_board', pb.BoardRequest),
  getCompatibleBoards: query('boards.get_compatible_boards', pb.BoardRequest),
  getAutomations: query('automations.get', pb.GetAutomationsRequest),
  getAutomationBodies: query('automations.get_bodies', pb.GetAutomationBodiesRequest),
  getInfo: query('info', pb.GetInfoRequest),
} as const;

type CatalogRpc = typeof catalogRpc;
type RequestOf<M> = M extends RpcMethod<infer Req, pb.JsonResult> ? Req : never;

/**
 * The catalog's contract: each query takes its request (fields left out take their proto defaults:
 * "" = not given, 0 = default) and resolves to the result as JSON text, ready to be sent on.
 */
export type CatalogApi = { [K in keyof CatalogRpc]: (request: Partial<RequestOf<CatalogRpc[K]>>) => Promise<string> };

/** A request with every field not given at its proto default (decoding no bytes yields exactly that). */
export function catalogRequest<K extends keyof CatalogRpc>(name: K, request: Partial<RequestOf<CatalogRpc[K]>>): RequestOf<CatalogRpc[K]> {
  const method = catalogRpc[name] as RpcMethod<RequestOf<CatalogRpc[K]>, pb.JsonResult>;
  return { ...method.request.decode(new Uint8Array(0)), ...request };
}

const names = Object.keys(catalogRpc) as (keyof CatalogRpc)[];

export function createCatalogBusClient(bus: Bus, timeoutMs?: number): CatalogApi {
  return Object.fromEntries(
    names.map((name) => [
      name,
      async (request: object) => {
        const method = catalogRpc[name] as RpcMethod<object, pb.JsonResult>;
        return (await callRpc(bus, method, catalogRequest(name, request), timeoutMs)).json;
      },
    ]),
  ) as CatalogApi;
}

/** Answer every catalog query on the bus from an implementation. */
export function serveCatalogOnBus(bus: Bus, api: CatalogApi): BusSubscription[] {
  return names.map((name) => {
    const method = catalogRpc[name] as RpcMethod<object, pb.JsonResult>;
    // Called as a method: an implementation may be a class instance.
    const handler = api[name] as (this: CatalogApi, request: object) => Promise<string>;
    return serveRpc(bus, method, async (request) => ({ json: await handler.call(api, request) }));
  });
}
