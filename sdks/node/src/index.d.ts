// Types of flowtide-worker (protocol v1). See docs/protocol.md in the flowtide repository.

export const PROTOCOL_VERSION: 1;
export const MAX_FRAME: number;
export const SDK_VERSION: string;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  warning(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface State {
  /** The value of `key` in the run's state (this attempt's own writes first), or `defaultValue`. */
  get<T = unknown>(key: string, defaultValue?: T): Promise<T>;
  /** Buffered; committed atomically with the step. `ttl`: seconds or a duration such as "10m". */
  set(key: string, value: unknown, ttl?: number | string | null): Promise<void>;
  delete(key: string): Promise<void>;
  items(): Promise<Record<string, unknown>>;
}

export interface Flows {
  /** Start a run of `flow`; resolves to its run id. */
  start(flow: string, input?: unknown): Promise<string>;
  cancel(runId: string): Promise<void>;
}

export interface TriggerInfo {
  name: string;
  type: string;
  data: unknown;
}

export interface Context {
  readonly runId: string | null;
  readonly flow: string | null;
  readonly step: string;
  /** 1-based. */
  readonly attempt: number;
  readonly jobId: string;
  readonly trigger: TriggerInfo | null;
  readonly awaited: unknown;
  /** Aborted when the worker cancels this invocation (timeout or shutdown). */
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly state: State;
  readonly flows: Flows;
  /** Buffered; committed atomically with the step. */
  emit(name: string, payload?: unknown): Promise<void>;
}

export type Handler<I = any, O = unknown> = (input: I, ctx: Context) => O | Promise<O>;

export function defineHandler<I = any, O = unknown>(handler: Handler<I, O>): Handler<I, O>;

/** A context request the worker refused; `type` is the worker's error type (e.g. "ContextError"). */
export class ContextError extends Error {
  readonly type: string;
  constructor(body: { type?: string; message?: string });
}

export class ProtocolError extends Error {
  readonly type: string;
  constructor(message: string, type?: string);
}

export class FrameDecoder {
  constructor(maxFrame?: number);
  feed(chunk: Uint8Array): Array<Record<string, unknown> & { type: string }>;
}

export function encode(message: { type: string; [key: string]: unknown }, maxFrame?: number): Buffer;
export function errorBody(err: unknown): { type: string; message: string; stack?: string; retryable?: false };
export function runChild(env?: Record<string, string | undefined>): Promise<void>;
export function makeContext(
  channel: unknown,
  invoke: string,
  context: Record<string, unknown>,
  signal: AbortSignal | (() => AbortSignal),
): Context;
