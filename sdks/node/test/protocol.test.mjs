import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encode, errorBody, FrameDecoder, PROTOCOL_VERSION, ProtocolError } from '../src/index.mjs';

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

test('garbage is a ProtocolError', () => {
  const decoder = new FrameDecoder();
  assert.throws(() => decoder.feed(Buffer.from('not json\n')), (err) => err instanceof ProtocolError && /not JSON/.test(err.message));
  assert.throws(() => new FrameDecoder().feed(Buffer.from('[1]\n')), /"type"/);
});

test('an oversized frame is a FrameTooLarge error on both sides', () => {
  assert.throws(() => encode({ type: 'x', data: 'y'.repeat(100) }, 50), (err) => err.type === 'FrameTooLarge');
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
