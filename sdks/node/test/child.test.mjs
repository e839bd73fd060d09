// The child runtime against a parent played by the test, over real pipes on fds 3 and 4.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

import { encode, FrameDecoder } from '../src/index.mjs';

const CHILD = fileURLToPath(new URL('../src/child.mjs', import.meta.url));
const fixture = (name) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const children = new Set();

after(() => {
  for (const child of children) child.kill('SIGKILL');
});

function startChild({ protocol = 1 } = {}) {
  const child = spawn(process.execPath, [CHILD], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, FLOWTIDE_PROTOCOL_FD_IN: '3', FLOWTIDE_PROTOCOL_FD_OUT: '4' },
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const decoder = new FrameDecoder();
  const inbox = [];
  const waiters = [];
  let beats = 0;
  const stdout = [];
  child.stdout.on('data', (d) => stdout.push(d.toString()));
  child.stdio[4].on('data', (chunk) => {
    for (const message of decoder.feed(chunk)) {
      if (message.type === 'heartbeat') {
        beats += 1;
        continue;
      }
      const i = waiters.findIndex((w) => w.match(message));
      if (i >= 0) waiters.splice(i, 1)[0].resolve(message);
      else inbox.push(message);
    }
  });
  const send = (message) => child.stdio[3].write(encode(message));
  const next = (match = () => true, timeoutMs = 5000) => {
    const i = inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no frame within the timeout')), timeoutMs);
      waiters.push({ match, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    });
  };
  const handshake = async () => {
    const hello = await next((m) => m.type === 'hello');
    assert.equal(hello.runtime, 'node');
    assert.equal(hello.pid, child.pid);
    send({ type: 'result', id: hello.id, value: { protocol, max_frame: 1 << 20, heartbeat_ms: 50 } });
    return hello;
  };
  return { child, send, next, handshake, stdout, beats: () => beats };
}

async function stop(c) {
  if (c.child.exitCode === null && c.child.signalCode === null) {
    c.send({ type: 'shutdown', grace_ms: 1000 });
    await once(c.child, 'exit');
  }
}

test('handshake, heartbeats, invoke with context requests, result', async () => {
  const c = startChild();
  const hello = await c.handshake();
  assert.equal(hello.protocol, 1);
  const deadline = Date.now() + 5000;
  while (c.beats() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(c.beats() >= 2, 'heartbeats every heartbeat_ms');
  c.send({ type: 'invoke', id: 'i1', handler: fixture('ok.mjs'), input: { n: 7 }, context: { run_id: 'r1', flow: 'f', step: 's', attempt: 2 } });
  const plain = await c.next((m) => m.type === 'log');
  assert.deepEqual([plain.level, plain.message, plain.fields, plain.invoke], ['info', 'plain output', { stream: 'stdout' }, 'i1']);
  const log = await c.next((m) => m.type === 'log');
  assert.deepEqual([log.level, log.message, log.fields, log.invoke], ['info', 'working', { n: 7 }, 'i1']);
  const set = await c.next((m) => m.type === 'state.set');
  assert.deepEqual([set.key, set.value, set.invoke], ['n', 7, 'i1']);
  c.send({ type: 'result', id: set.id, value: null });
  const get = await c.next((m) => m.type === 'state.get');
  c.send({ type: 'result', id: get.id, value: 7 });
  const emit = await c.next((m) => m.type === 'emit');
  assert.deepEqual([emit.name, emit.payload], ['done', { n: 7 }]);
  c.send({ type: 'result', id: emit.id, value: null });
  const start = await c.next((m) => m.type === 'flows.start');
  assert.equal(start.flow, 'other');
  c.send({ type: 'result', id: start.id, value: 'run-2' });
  const result = await c.next((m) => m.id === 'i1');
  assert.equal(result.type, 'result');
  assert.deepEqual(result.value, { seen: 7, run: 'run-2', runId: 'r1', flow: 'f', step: 's', attempt: 2 });
  assert.doesNotMatch(c.stdout.join(''), /plain output/, 'console output inside a handler is a log frame');
  await stop(c);
  assert.equal(c.child.exitCode, 0);
});

test('errors carry type and stack; a refused context request rejects in the handler', async () => {
  const c = startChild();
  await c.handshake();
  c.send({ type: 'invoke', id: 'i1', handler: fixture('throws.mjs'), input: null, context: {} });
  const err = await c.next((m) => m.id === 'i1');
  assert.equal(err.type, 'error');
  assert.equal(err.error.type, 'RangeError');
  assert.match(err.error.stack, /throws\.mjs/);
  c.send({ type: 'invoke', id: 'i2', handler: fixture('ok.mjs'), input: { n: 1 }, context: {} });
  const set = await c.next((m) => m.type === 'state.set');
  c.send({ type: 'error', id: set.id, error: { type: 'ContextError', message: 'state is read-only' } });
  const failed = await c.next((m) => m.id === 'i2');
  assert.equal(failed.error.type, 'ContextError');
  assert.equal(failed.error.message, 'state is read-only');
  await stop(c);
});

test('a missing file or default export is HandlerNotFound, not retryable; CommonJS works', async () => {
  const c = startChild();
  await c.handshake();
  c.send({ type: 'invoke', id: 'a', handler: fixture('no-default.mjs'), input: null, context: {} });
  const a = await c.next((m) => m.id === 'a');
  assert.equal(a.error.type, 'HandlerNotFound');
  assert.equal(a.error.retryable, false);
  c.send({ type: 'invoke', id: 'b', handler: fixture('missing.mjs'), input: null, context: {} });
  const b = await c.next((m) => m.id === 'b');
  assert.equal(b.error.type, 'HandlerNotFound');
  c.send({ type: 'invoke', id: 'c', handler: fixture('commonjs.cjs'), input: 21, context: {} });
  const r = await c.next((m) => m.id === 'c');
  assert.deepEqual(r.value, { doubled: 42 });
  c.send({ type: 'nonsense', id: 'd' });
  const u = await c.next((m) => m.id === 'd');
  assert.equal(u.error.type, 'UnknownRequest');
  await stop(c);
});

test('a version mismatch makes the child exit with code 3', async () => {
  const c = startChild();
  const hello = await c.next((m) => m.type === 'hello');
  c.send({ type: 'error', id: hello.id, error: { type: 'VersionMismatch', message: 'speak 2' } });
  const [code] = await once(c.child, 'exit');
  assert.equal(code, 3);
});

test('the child exits when the parent closes the channel', async () => {
  const c = startChild();
  await c.handshake();
  c.child.stdio[3].end();
  const [code] = await once(c.child, 'exit');
  assert.equal(code, 0);
});

test('several invocations run at once; a cancel is answered at once and the late result dropped', async () => {
  const c = startChild();
  const hello = await c.handshake();
  assert.ok(hello.capabilities.includes('concurrent'));
  c.send({ type: 'invoke', id: 'a', handler: fixture('ok.mjs'), input: { n: 1 }, context: {} });
  c.send({ type: 'invoke', id: 'b', handler: fixture('ok.mjs'), input: { n: 2 }, context: {} });
  const setA = await c.next((m) => m.type === 'state.set' && m.invoke === 'a');
  const setB = await c.next((m) => m.type === 'state.set' && m.invoke === 'b');
  c.send({ type: 'cancel', id: 'a', reason: 'timeout' });
  const canceled = await c.next((m) => m.id === 'a');
  assert.equal(canceled.type, 'error');
  assert.equal(canceled.error.type, 'Canceled');
  assert.match(canceled.error.message, /timeout/);
  c.send({ type: 'result', id: setB.id, value: null });
  c.send({ type: 'result', id: setA.id, value: null }); // a keeps running in the background
  const getB = await c.next((m) => m.type === 'state.get' && m.invoke === 'b');
  c.send({ type: 'result', id: getB.id, value: 2 });
  const emitB = await c.next((m) => m.type === 'emit' && m.invoke === 'b');
  c.send({ type: 'result', id: emitB.id, value: null });
  const startB = await c.next((m) => m.type === 'flows.start' && m.invoke === 'b');
  c.send({ type: 'result', id: startB.id, value: 'run-b' });
  const b = await c.next((m) => m.id === 'b');
  assert.equal(b.value.seen, 2);
  await stop(c);
});
