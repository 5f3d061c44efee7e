import { hasWildcard, subjectMatches } from './subject.js';

export interface IndexEntry {
  readonly pattern: string;
  readonly queue: string | undefined;
}

/** Distinct subjects whose wildcard matches are remembered; past this the cache starts over. */
const MATCH_CACHE_LIMIT = 4096;
const NONE: readonly never[] = [];

/**
 * Who receives a subject. Exact subjects are one map lookup. Wildcard patterns are scanned once per
 * distinct subject and the result cached (as the NATS server's sublist does), so steady traffic such
 * as log lines costs two map lookups whatever the number of wildcard subscriptions. Queue groups are
 * formed by name across all matching patterns, as the NATS server does.
 */
export class SubscriptionIndex<E extends IndexEntry> {
  readonly #exact = new Map<string, E[]>();
  readonly #wildcards: E[] = [];
  readonly #wildcardMatches = new Map<string, readonly E[]>();

  add(entry: E): void {
    if (hasWildcard(entry.pattern)) {
      this.#wildcards.push(entry);
      this.#wildcardMatches.clear();
      return;
    }
    const list = this.#exact.get(entry.pattern);
    if (list) list.push(entry);
    else this.#exact.set(entry.pattern, [entry]);
  }

  remove(entry: E): void {
    if (hasWildcard(entry.pattern)) {
      removeFrom(this.#wildcards, entry);
      this.#wildcardMatches.clear();
      return;
    }
    const list = this.#exact.get(entry.pattern);
    if (!list) return;
    removeFrom(list, entry);
    if (list.length === 0) this.#exact.delete(entry.pattern);
  }

  /**
   * Call `send` for every plain subscriber and for one random member of each queue group; returns how
   * many were sent to. `send` and `payload` are passed through so callers need no per-message closure.
   */
  route<P>(subject: string, payload: P, send: (entry: E, payload: P) => void): number {
    let sent = 0;
    let groups: Map<string, E[]> | undefined;
    const exact = this.#exact.get(subject);
    if (exact) {
      for (let i = 0; i < exact.length; i++) {
        const entry = exact[i]!;
        if (entry.queue === undefined) {
          send(entry, payload);
          sent++;
        } else groups = addToGroup(groups, entry.queue, entry);
      }
    }
    const wildcards = this.#matchWildcards(subject);
    for (let i = 0; i < wildcards.length; i++) {
      const entry = wildcards[i]!;
      if (entry.queue === undefined) {
        send(entry, payload);
        sent++;
      } else groups = addToGroup(groups, entry.queue, entry);
    }
    if (groups) {
      for (const members of groups.values()) {
        send(members[Math.floor(Math.random() * members.length)]!, payload);
        sent++;
      }
    }
    return sent;
  }

  #matchWildcards(subject: string): readonly E[] {
    if (this.#wildcards.length === 0) return NONE;
    let matches = this.#wildcardMatches.get(subject);
    if (matches === undefined) {
      matches = this.#wildcards.filter((entry) => subjectMatches(entry.pattern, subject));
      if (matches.length === 0) matches = NONE;
      if (this.#wildcardMatches.size >= MATCH_CACHE_LIMIT) this.#wildcardMatches.clear();
      this.#wildcardMatches.set(subject, matches);
    }
    return matches;
  }
}

/** Groups are only built when a queue subscriber matches, keeping plain publishes allocation-free. */
function addToGroup<E>(groups: Map<string, E[]> | undefined, queue: string, entry: E): Map<string, E[]> {
  const map = groups ?? new Map<string, E[]>();
  const members = map.get(queue);
  if (members) members.push(entry);
  else map.set(queue, [entry]);
  return map;
}

function removeFrom<T>(list: T[], item: T): void {
  const at = list.indexOf(item);
  if (at >= 0) list.splice(at, 1);
}
