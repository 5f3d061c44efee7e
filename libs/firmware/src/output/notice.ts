/**
 * The line shown in place of what was trimmed. `elided` is cumulative across every trim of a job
 * (in-flight and final), so the reader sees the true total dropped, not just the last trim's share.
 * The wording matches upstream's notice so anyone who knows it recognises it.
 */
export function trimNotice(elided: number): string {
  return `... [output trimmed: ${elided} earlier line(s) elided]`;
}
