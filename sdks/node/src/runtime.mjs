// The Node child runtime: protocol v1 on the fds named in the environment. It imports each
// handler file once (its default export is `async (input, ctx) => result`) and answers invokes,
// several at once (capability "concurrent"). Frames out are batched: one write per tick.
// console.log/info/debug/warn/error called inside a handler become `log` frames of that
// invocation (found through AsyncLocalStorage), so output is attributed exactly even when
// several invocations run; other output goes to the real stdout/stderr.
import { AsyncLocalStorage } from 'node:async_hooks';
import net from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

import { encodeText, errorBody, FrameDecoder, MAX_FRAME, PROTOCOL_VERSION, ProtocolError } from './protocol.mjs';

export const SDK_VERSION = '0.1.0';
export const EXIT_VERSION_MISMATCH = 3;
export const EXIT_PROTOCOL_ERROR = 4;

/** A context request the parent refused; `type` is the parent's error type. */
export class ContextError extends Error {
  constructor(body) {
    super(body && body.message ? body.message : 'context request failed');
    this.name = (body && body.type) || 'ContextError';
    this.type = this.name;
  }
}

class HandlerNotFound extends Error {
  constructor(message) {
    super(message);
    this.name = 'HandlerNotFound';
    this.retryable = false;
  }
}

const handlers = new Map();

async function loadHandler(file) {
  let found = handlers.get(file);
  if (found) return found;
  const path = isAbsolute(file) ? file : resolve(file);
  let mod;
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (err) {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(path)) {
      throw new HandlerNotFound(`handler file ${path} does not exist`);
    }
    throw err;
  }
  let fn = mod.default;
  if (typeof fn !== 'function' && fn && typeof fn.default === 'function') fn = fn.default;
  if (typeof fn !== 'function') {
    throw new HandlerNotFound(`${path} has no default export function (export default async (input, ctx) => ...)`);
  }
  handlers.set(file, fn);
  return fn;
}

export class Channel {
  constructor(fdIn, fdOut, maxFrame = MAX_FRAME) {
    this.maxFrame = maxFrame;
    this.decoder = new FrameDecoder(maxFrame);
    this.pending = new Map();
    this.nextId = 1;
    this.out = new net.Socket({ fd: fdOut, readable: false, writable: true });
    this.queue = []; // frames (strings) to write at the end of this tick
    this.flush = () => {
      const queue = this.queue;
      this.queue = [];
      this.out.write(queue.length === 1 ? queue[0] : queue.join(''), 'utf8');
    };
    this.onMessage = () => {};
    const onChunk = (chunk) => {
      let frames;
      try {
        frames = this.decoder.feed(chunk);
      } catch (err) {
        process.stderr.write(`flowtide child: protocol error from the parent: ${err.message}\n`);
        process.exit(EXIT_PROTOCOL_ERROR);
      }
      for (const message of frames) this.dispatch(message);
    };
    // Reads go straight to the decoder (`onread`: one reused buffer, no stream machinery per read;
    // the decoder copies what it keeps of a chunk).
    const buffer = Buffer.allocUnsafe(64 * 1024);
    this.in = new net.Socket({
      fd: fdIn,
      readable: true,
      writable: false,
      onread: { buffer, callback: (size) => (onChunk(buffer.subarray(0, size)), true) },
    });
    this.in.on('end', () => process.exit(0)); // the parent is gone
    this.in.on('error', () => process.exit(0));
    this.out.on('error', () => process.exit(0));
  }

  /** Queue a frame (throws ProtocolError at once); the queue is written once per tick. */
  send(message) {
    this.sendFrame(encodeText(message, this.maxFrame));
  }

  /** Queue an encoded frame (a string from `encodeText`). */
  sendFrame(data) {
    if (this.queue.length === 0) process.nextTick(this.flush);
    this.queue.push(data);
  }

  request(type, fields) {
    const id = `c${this.nextId++}`;
    return new Promise((resolvePromise, reject) => {
      this.pending.set(id, { resolve: resolvePromise, reject });
      try {
        this.send({ type, id, ...fields });
      } catch (err) {
        this.pending.delete(id);
        reject(err);
      }
    });
  }

  dispatch(message) {
    if (message.type === 'result' || message.type === 'error') {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.type === 'result') waiter.resolve(message.value === undefined ? null : message.value);
      else waiter.reject(new ContextError(message.error));
      return;
    }
    this.onMessage(message);
  }
}

function makeLogger(channel, invoke) {
  const log = (level) => (message, fields = {}) => {
    let safe = fields;
    try {
      JSON.stringify(fields);
    } catch {
      safe = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)]));
    }
    channel.send({ type: 'log', invoke, level, message: String(message), fields: safe ?? {} });
  };
  return { debug: log('debug'), info: log('info'), warn: log('warning'), warning: log('warning'), error: log('error') };
}

/**
 * The `ctx` a handler receives: mirrors the Python Context (camelCase names). Its identity fields
 * are its own (frozen); `log`, `state`, `flows`, `emit` and `signal` are made on first use, so a
 * handler that does not use them costs one object per invocation.
 */
class HandlerContext {
  #channel;
  #invoke;
  #signal;
  #log = null;
  #state = null;
  #flows = null;
  #emit = null;

  constructor(channel, invoke, context, signal) {
    this.runId = context.run_id ?? null;
    this.flow = context.flow ?? null;
    this.step = context.step ?? '';
    this.attempt = context.attempt ?? 1;
    this.jobId = context.job_id ?? '';
    this.trigger = context.trigger ?? null;
    this.awaited = context.awaited ?? null;
    this.#channel = channel;
    this.#invoke = invoke;
    this.#signal = signal;
    Object.freeze(this);
  }

  #call(type, fields) {
    fields.invoke = this.#invoke;
    return this.#channel.request(type, fields);
  }

  get signal() {
    const signal = this.#signal;
    if (signal instanceof Running) return signal.signal;
    return typeof signal === 'function' ? signal() : signal;
  }

  get log() {
    return (this.#log ??= Object.freeze(makeLogger(this.#channel, this.#invoke)));
  }

  get state() {
    return (this.#state ??= Object.freeze({
      get: (key, defaultValue = null) => this.#call('state.get', { key, default: defaultValue }),
      set: async (key, value, ttl = null) => {
        await this.#call('state.set', { key, value: value === undefined ? null : value, ttl });
      },
      delete: async (key) => {
        await this.#call('state.delete', { key });
      },
      items: () => this.#call('state.items', {}),
    }));
  }

  get emit() {
    return (this.#emit ??= async (name, payload = null) => {
      await this.#call('emit', { name, payload: payload === undefined ? null : payload });
    });
  }

  get flows() {
    return (this.#flows ??= Object.freeze({
      start: (flow, input = null) => this.#call('flows.start', { flow, input }),
      cancel: async (runId) => {
        await this.#call('flows.cancel', { run_id: runId });
      },
    }));
  }
}

/** The `ctx` of invocation `invoke`; `signal` is an AbortSignal or a function returning one. */
export function makeContext(channel, invoke, context, signal) {
  return new HandlerContext(channel, invoke, context, signal);
}

/** An invocation in flight: its AbortController is only made if the handler reads ctx.signal. */
class Running {
  constructor(id) {
    this.id = id;
    this.controller = null;
    this.reason = null;
  }

  get signal() {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.reason !== null) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  cancel(reason) {
    this.reason = new Error(reason);
    if (this.controller !== null) this.controller.abort(this.reason);
  }
}

// Console attribution. On Node < 24 AsyncLocalStorage makes every promise in the process slower
// (about 8 us per invocation of a no-op handler), so there it is switched on by the first console
// call made inside a handler; from then on each invocation runs inside `current.run(id)`. Output
// that cannot be attributed (from an invocation started before the switch while others run) goes
// to the real stdout/stderr, where the parent attributes it only if exactly one invocation is in
// flight. Node >= 24 propagates the store cheaply (AsyncContextFrame): tracking is always on.
const current = new AsyncLocalStorage();
let tracking = Number(process.versions.node.split('.')[0]) >= 24;

/** Route console output made inside a handler to `log` frames of its invocation. */
export function captureConsole(channel, running) {
  const streams = { log: 'stdout', info: 'stdout', debug: 'stdout', warn: 'stderr', error: 'stderr' };
  for (const [method, stream] of Object.entries(streams)) {
    const original = console[method].bind(console);
    console[method] = (...args) => {
      let invoke = current.getStore();
      if (invoke === undefined && running.size > 0) {
        tracking = true;
        if (running.size === 1) invoke = running.keys().next().value;
      }
      if (invoke === undefined || !running.has(invoke)) return original(...args);
      const level = stream === 'stdout' ? 'info' : 'warning';
      for (const line of format(...args).split('\n')) {
        if (line.trim()) channel.send({ type: 'log', invoke, level, message: line, fields: { stream } });
      }
    };
  }
}

function invoke(channel, message, running) {
  if (!tracking) return runInvocation(channel, message, running);
  return current.run(message.id, () => runInvocation(channel, message, running));
}

async function runInvocation(channel, message, running) {
  const id = message.id;
  const inv = new Running(id);
  running.set(id, inv);
  let frame;
  try {
    const file = String(message.handler);
    const fn = handlers.get(file) ?? (await loadHandler(file));
    const ctx = new HandlerContext(channel, id, message.context || {}, inv);
    const value = await fn(message.input === undefined ? null : message.input, ctx);
    try {
      frame = encodeText({ type: 'result', id, value: value === undefined ? null : value }, channel.maxFrame);
    } catch (err) {
      const body = errorBody(err);
      if (err.type === 'NotSerializable') body.retryable = false;
      frame = encodeText({ type: 'error', id, error: body }, channel.maxFrame);
    }
  } catch (err) {
    frame = encodeText({ type: 'error', id, error: errorBody(err) }, channel.maxFrame);
  } finally {
    if (running.get(id) === inv) running.delete(id);
  }
  if (inv.reason !== null) return; // the cancel was answered already
  channel.sendFrame(frame);
}

/** Run the child: handshake, heartbeats, then serve invokes until shutdown or EOF. */
export async function runChild(env = process.env) {
  const fdIn = Number(env.FLOWTIDE_PROTOCOL_FD_IN);
  const fdOut = Number(env.FLOWTIDE_PROTOCOL_FD_OUT);
  if (!Number.isInteger(fdIn) || !Number.isInteger(fdOut)) {
    process.stderr.write('flowtide-worker: FLOWTIDE_PROTOCOL_FD_IN/OUT are not set; this program is started by a flowtide worker\n');
    process.exit(2);
  }
  const channel = new Channel(fdIn, fdOut, Number(env.FLOWTIDE_PROTOCOL_MAX_FRAME) || MAX_FRAME);
  const running = new Map();
  captureConsole(channel, running);
  channel.onMessage = (message) => {
    switch (message.type) {
      case 'invoke':
        invoke(channel, message, running);
        break;
      case 'cancel': {
        // Abort ctx.signal and answer at once: a promise cannot be stopped from outside, so a
        // handler that ignores the signal runs on in the background, its result is dropped and
        // its context requests are refused (NotInvoking). A handler that blocks the event loop
        // cannot be answered for: the parent kills the child after its grace.
        const inv = running.get(message.id);
        if (!inv) break;
        running.delete(message.id);
        const reason = message.reason || 'canceled';
        inv.cancel(reason);
        channel.send({ type: 'error', id: message.id, error: { type: 'Canceled', message: `the invocation was canceled (${reason})` } });
        break;
      }
      case 'shutdown':
        process.exit(0);
        break;
      default:
        if (message.id !== undefined) {
          channel.send({ type: 'error', id: message.id, error: { type: 'UnknownRequest', message: `unknown request type '${message.type}'` } });
        }
    }
  };
  let welcome;
  try {
    welcome = await channel.request('hello', {
      protocol: PROTOCOL_VERSION,
      runtime: 'node',
      runtime_version: process.versions.node,
      pid: process.pid,
      sdk: `flowtide-worker ${SDK_VERSION}`,
      capabilities: ['invoke', 'cancel', 'state', 'emit', 'flows', 'log', 'concurrent'],
    });
  } catch (err) {
    process.stderr.write(`flowtide-worker: the parent refused the handshake: ${err.message}\n`);
    process.exit(err.type === 'VersionMismatch' ? EXIT_VERSION_MISMATCH : EXIT_PROTOCOL_ERROR);
  }
  channel.maxFrame = Number(welcome.max_frame) || channel.maxFrame;
  const beat = { type: 'heartbeat' };
  setInterval(() => channel.send(beat), Number(welcome.heartbeat_ms) || 1000);
}

export { ProtocolError };
