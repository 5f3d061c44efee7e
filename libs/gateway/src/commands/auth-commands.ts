import { delay } from '@kiln/core';
import { parseArgs, v } from './args.js';
import type { CommandHandler } from './types.js';

/** Commands a connection may send before it has logged in. */
const FAILED_LOGIN_DELAY_MS = 300;

export const OPEN_COMMANDS = new Set(['auth/login']);

export const authCommands: Record<string, CommandHandler> = {
  'auth/login': async (ctx, args, session) => {
    const a = parseArgs(
      v.union(
        [v.strictObject({ username: v.optional(v.string(), 'admin'), password: v.string() }), v.strictObject({ token: v.string() })],
        'needs {username, password} or {token}',
      ),
      args,
    );
    if (!ctx.auth.required) return { result: { authenticated: true, required: false } };
    let opened;
    try {
      opened = 'token' in a ? ctx.auth.resume(a.token) : ctx.auth.login(a.username, a.password);
    } catch (err) {
      // A wrong guess costs time: online guessing is slowed without locking anyone out.
      await delay(FAILED_LOGIN_DELAY_MS);
      throw err;
    }
    session.authenticated = true;
    session.token = opened.token;
    return { result: { authenticated: true, ...opened } };
  },
  'auth/refresh': async (ctx, args, session) => {
    parseArgs(v.strictObject({}), args);
    if (!ctx.auth.required || !session.token) return { result: { authenticated: true, required: ctx.auth.required } };
    return { result: ctx.auth.refresh(session.token) };
  },
  'auth/logout': async (ctx, args, session) => {
    parseArgs(v.strictObject({}), args);
    ctx.auth.logout(session.token);
    session.authenticated = !ctx.auth.required;
    session.token = undefined;
    session.closeAfterReply = true;
    return { result: { logged_out: true } };
  },
};
