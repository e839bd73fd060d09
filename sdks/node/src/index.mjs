// flowtide-worker: write flowtide steps in JavaScript/TypeScript.
//
//   // functions/resize.mjs
//   export default async function resize(input, ctx) {
//     ctx.log.info('resizing', { id: input.id });
//     await ctx.state.set('size', 42);
//     await ctx.emit('image.resized', { id: input.id });
//     return { ok: true };
//   }
//
// The worker starts `src/child.mjs` itself; applications only need `defineHandler` for types.
export { encode, errorBody, FrameDecoder, MAX_FRAME, PROTOCOL_VERSION, ProtocolError } from './protocol.mjs';
export { ContextError, makeContext, runChild, SDK_VERSION } from './runtime.mjs';

/** Identity helper that gives a handler its types: `export default defineHandler(async (input, ctx) => ...)`. */
export function defineHandler(handler) {
  return handler;
}
