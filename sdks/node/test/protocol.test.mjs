import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encode, errorBody, FrameDecoder, makeContext, PROTOCOL_VERSION, ProtocolError } from '../src/index.mjs';

test('protocol version is 1', () => {
  assert.equal(PROTOCOL_VERSION, 1);
});

test('frames split across chunks are reassembled', () => {
  const decoder = new FrameDecoder();
  const data = Buffer.concat([encode({ type: 'a', id: 1 }), encode({ type: 'b', text: 'x\ny' })]);
  const frames = [];
  for (let i = 0; i < data.length; i += 3) frames.push(...decoder.feed(data.subarray(i, i + 3)));
  assert.deepEqual(frames, [{ type: 'a', id: 1 }, { type: 'b', text: 'x\ny' }]);
});

test('several whole frames in one chunk, then a partial one, are decoded in order', () => {
  const decoder = new FrameDecoder();
  const whole = Buffer.concat([encode({ type: 'a', s: 'é✓' }), encode({ type: 'b' }), encode({ type: 'c' })]);
  assert.deepEqual(decoder.feed(whole), [{ type: 'a', s: 'é✓' }, { type: 'b' }, { type: 'c' }]);
  const next = encode({ type: 'd', s: '✓✓' });
  assert.deepEqual(decoder.feed(next.subarray(0, 12)), []); // cut inside a multi-byte character
  assert.deepEqual(decoder.feed(Buffer.concat([next.subarray(12), encode({ type: 'e' })])), [{ type: 'd', s: '✓✓' }, { type: 'e' }]);
  assert.throws(() => new FrameDecoder(20).feed(Buffer.from(`{"type":"x","s":"${'y'.repeat(20)}"}\n`)), (err) => err.type === 'FrameTooLarge');
});

test('garbage is a ProtocolError', () => {
  const decoder = new FrameDecoder();
  assert.throws(() => decoder.feed(Buffer.from('not json\n')), (err) => err instanceof ProtocolError && /not JSON/.test(err.message));
  assert.throws(() => new FrameDecoder().feed(Buffer.from('[1]\n')), /"type"/);
});

test('an oversized frame is a FrameTooLarge error on both sides', () => {
  assert.throws(() => encode({ type: 'x', data: 'y'.repeat(100) }, 50), (err) => err.type === 'FrameTooLarge');
  // the limit is in UTF-8 bytes: 20 three-byte characters do not fit in 50 bytes
  assert.throws(() => encode({ type: 'x', d: '✓'.repeat(20) }, 50), (err) => err.type === 'FrameTooLarge');
  assert.equal(encode({ type: 'x', d: '✓'.repeat(10) }, 49).length, 50); // 49 bytes of JSON, then the newline
  const decoder = new FrameDecoder(10);
  assert.throws(() => decoder.feed(Buffer.from('{"type":"aaaaaaaaaaa')), (err) => err.type === 'FrameTooLarge');
});

test('error bodies carry type, message, stack and retryable', () => {
  const err = new TypeError('bad');
  err.retryable = false;
  const body = errorBody(err);
  assert.equal(body.type, 'TypeError');
  assert.equal(body.message, 'bad');
  assert.match(body.stack, /TypeError: bad/);
  assert.equal(body.retryable, false);
  assert.deepEqual(errorBody('plain'), { type: 'Error', message: 'plain' });
});

test('ctx: identity fields, frozen, parts made on first use and usable when destructured', async () => {
  const sent = [];
  const channel = { request: (type, fields) => { sent.push({ type, ...fields }); return Promise.resolve(type === 'state.get' ? 5 : null); } };
  const signal = AbortSignal.abort();
  const ctx = makeContext(channel, 'i9', { run_id: 'r', flow: 'f', step: 's', attempt: 3, job_id: 'j' }, signal);
  assert.deepEqual([ctx.runId, ctx.flow, ctx.step, ctx.attempt, ctx.jobId, ctx.trigger, ctx.awaited], ['r', 'f', 's', 3, 'j', null, null]);
  assert.ok(Object.isFrozen(ctx));
  assert.throws(() => { ctx.step = 'other'; }, TypeError);
  assert.equal(ctx.signal, signal);
  assert.equal(ctx.state, ctx.state);
  const { state, emit, flows, log } = ctx;
  assert.equal(await state.get('k'), 5);
  await emit('e', { a: 1 });
  await flows.cancel('r2');
  assert.equal(typeof log.info, 'function');
  assert.deepEqual(sent, [
    { type: 'state.get', key: 'k', default: null, invoke: 'i9' },
    { type: 'emit', name: 'e', payload: { a: 1 }, invoke: 'i9' },
    { type: 'flows.cancel', run_id: 'r2', invoke: 'i9' },
  ]);
  const lazy = makeContext(channel, 'i10', {}, () => signal);
  assert.deepEqual([lazy.runId, lazy.step, lazy.attempt], [null, '', 1]);
  assert.equal(lazy.signal, signal);
});
